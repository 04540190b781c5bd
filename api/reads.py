"""Every SQL the API runs to read: served from the serving tables (current_scores and the maintained aggregates,
through the marts in dbt_like_sql/marts), each query shaped for an index, never a join or a full count per request."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.postgres import types as pg_types
from psycopg.rows import dict_row
from sqlalchemy import Connection

from api.errors import field_error
from leadscore_pipeline.buckets import LEAD_BUCKETS, lead_bucket_sql
from leadscore_pipeline.rules import VERSION_COLUMNS
from leadscore_pipeline.scoring.params import ScoringParams

# Parameters are psycopg's %(name)s: the same text serves SQLAlchemy (exec_driver_sql), exports and the stream.
LEAD_COLUMNS = "lead_key, email, name, company, score, tier, last_event_at"
SORT_KEYS = ("score", "last_event_at", "name", "company", "email")
NULLABLE_SORT_KEYS = frozenset({"name", "company", "email"})
# A search counts its matches up to this many (a few ms at most); past it the total is this lower bound and
# total_exact is false.
SEARCH_COUNT_LIMIT = 1_000
TIERS = ("cold", "warm", "hot", "qualified")


# Requests read on pooled autocommit connections (api/deps.py): one round trip per query, no BEGIN/COMMIT.
async def _rows(conn: AsyncConnection, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(sql, params or {})
        return await cursor.fetchall()


async def _one(conn: AsyncConnection, sql: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(sql, params or {})
        return await cursor.fetchone()


# --- leaderboard and lead list ---------------------------------------------------------------------


async def leaderboard(conn: AsyncConnection, limit: int) -> dict[str, Any]:
    """Top leads in rank order: the first `limit` entries of the index current_scores_rank."""
    rows = await _rows(
        conn,
        f"select {LEAD_COLUMNS}, as_of from leaderboard order by score desc, lead_key limit %(limit)s",
        {"limit": limit},
    )
    leads = [{**row, "rank": rank} for rank, row in enumerate(rows, start=1)]
    return {"as_of": max((lead["as_of"] for lead in leads), default=None), "leads": leads}


@dataclass(frozen=True)
class LeadFilter:
    company: str | None = None
    tier: str | None = None
    search: str | None = None
    # The term's rarest word, given to the trigram index alone (see search_probe); None: the whole term is.
    probe: str | None = None

    def where(self) -> tuple[list[str], dict[str, Any]]:
        """Conditions (each matching an index of migrations 0006 and 0008) and their parameters."""
        where: list[str] = []
        params: dict[str, Any] = {}
        if self.company is not None:
            where.append("lower(company) = lower(%(company)s)")
            params["company"] = self.company
        if self.tier is not None:
            where.append("tier = %(tier)s")
            params["tier"] = self.tier
        if self.search:
            where.append(self._search_condition())
            params["search"] = _contains(self.search)
            if self.probe is not None:
                params["probe"] = _contains(self.probe)
        return where, params

    def _search_condition(self) -> str:
        if "\n" in self.search:  # search_text keeps the fields one per line: such a term is matched field by field
            return "(lead_key ilike %(search)s or name ilike %(search)s or company ilike %(search)s)"
        # The lead_key is the normalized email (id:<external id> without one), so it stands for the email.
        if self.probe is None:
            return "search_text like lower(%(search)s)"
        # Every match holds the probe word: the index looks that up alone (an index given every word of a long
        # term reads the long posting lists of its common ones); `|| ''` keeps the whole term out of the index.
        return "search_text like lower(%(probe)s) and (search_text || '') like lower(%(search)s)"


def _contains(text: str) -> str:
    """A like pattern matching `text` anywhere, its wildcards escaped."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# Words as pg_trgm makes trigrams of them: runs of letters and digits; shorter than a trigram, a word finds nothing.
_WORD = re.compile(r"[^\W_]+")
_TRIGRAM = 3
SEARCH_SAMPLES_MAX_AGE_SECONDS = 300.0
_search_samples: tuple[float, list[str]] = (float("-inf"), [])


async def _samples(conn: AsyncConnection) -> list[str]:
    """The planner's sample of search_text (its histogram, from the last ANALYZE), kept a few minutes per process."""
    global _search_samples
    taken, samples = _search_samples
    if time.monotonic() - taken > SEARCH_SAMPLES_MAX_AGE_SECONDS:
        row = await _one(
            conn,
            # current_scores is partitioned by bucket (migration 0011): the samples of every partition.
            """select array_agg(sample) as samples
               from pg_stats s cross join unnest(s.histogram_bounds::text::text[]) as sample
               where s.schemaname = current_schema() and s.attname = 'search_text'
                 and s.tablename ~ '^current_scores_b[0-9]+$'""",
        )
        samples = (row or {}).get("samples") or []
        _search_samples = (time.monotonic(), samples)
    return samples


async def search_probe(conn: AsyncConnection, lead_filter: LeadFilter) -> LeadFilter:
    """The filter with its probe: of a term of several words, the one found in the fewest sampled leads (ties: the
    longest). Which word it is changes only the cost, never the result: every match contains each of its words."""
    term = lead_filter.search or ""
    words = [word.lower() for word in _WORD.findall(term) if len(word) >= _TRIGRAM]
    if "\n" in term or not words or words == [term.lower()]:
        return lead_filter
    samples = await _samples(conn)
    rarest = min(words, key=lambda word: (sum(word in sample for sample in samples), -len(word)))
    return replace(lead_filter, probe=rarest)


def _key_order(sort_by: str, order: str) -> str:
    """How ties go: by lead_key ascending in the key's natural direction (score going down, as the leaderboard;
    every other key going up), and descending when that is reversed, so that either direction is one sort index
    read forwards or backwards (migration 0006) and `order` reverses the list exactly."""
    natural = "desc" if sort_by == "score" else "asc"
    return "asc" if order == natural else "desc"


def _order_by(sort_by: str, order: str) -> str:
    # sort_by and order are whitelisted enums. Nulls (name, company, email) come first going up, last going down.
    nulls = "" if sort_by not in NULLABLE_SORT_KEYS else " nulls last" if order == "desc" else " nulls first"
    return f"{sort_by} {order}{nulls}, lead_key {_key_order(sort_by, order)}"


def encode_cursor(sort_by: str, row: dict[str, Any]) -> str:
    value = row[sort_by]
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"k": sort_by, "v": value, "id": row["lead_key"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort_by: str) -> tuple[Any, str]:
    """The last row's sort value and lead_key; anything else is a 422 naming query.cursor."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict) or raw.get("k") != sort_by or not isinstance(raw.get("id"), str):
            raise ValueError
        value = raw["v"]
        if sort_by == "score":
            if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 2**31:
                raise ValueError
        elif sort_by == "last_event_at":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError
        elif value is not None and not isinstance(value, str):
            raise ValueError
        if "\x00" in raw["id"] or (isinstance(value, str) and "\x00" in value):
            raise ValueError
        return value, raw["id"]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise field_error(422, "query.cursor", f"not a cursor of this list sorted by {sort_by}") from None


def _segments_after(sort_by: str, order: str, value: Any, nullable: bool) -> list[str]:
    """The rows after (value, lead_key) in _order_by's order, as consecutive ranges each read
    straight off the sort index (index conditions, no filter walking over skipped rows)."""
    next_key = f"lead_key {'>' if _key_order(sort_by, order) == 'asc' else '<'} %(cursor_key)s"
    after_same = f"{sort_by} = %(cursor_value)s and {next_key}"
    beyond = f"{sort_by} {'<' if order == 'desc' else '>'} %(cursor_value)s"
    if value is None:  # only a nullable key: nulls come last (desc) or first (asc)
        null_part = f"{sort_by} is null and {next_key}"
        return [null_part] if order == "desc" else [null_part, f"{sort_by} is not null"]
    segments = [after_same, beyond]
    if nullable and order == "desc":
        segments.append(f"{sort_by} is null")
    return segments


async def lead_page(
    conn: AsyncConnection,
    lead_filter: LeadFilter,
    sort_by: str,
    order: str,
    limit: int,
    offset: int,
    cursor: str | None,
) -> dict[str, Any]:
    """One page of leads: by offset, or after a keyset cursor (then offset is ignored and reported as 0)."""
    lead_filter = await search_probe(conn, lead_filter)
    where, params = lead_filter.where()
    order_by = _order_by(sort_by, order)
    select = f"select {LEAD_COLUMNS} from leaderboard"
    if cursor is None:
        condition = " and ".join(where) or "true"
        sql = f"{select} where {condition} order by {order_by} limit %(limit)s offset %(offset)s"
        rows = await _rows(conn, sql, {**params, "limit": limit, "offset": offset})
    else:
        value, key = decode_cursor(cursor, sort_by)
        offset = 0
        rows = []
        for segment in _segments_after(sort_by, order, value, sort_by in NULLABLE_SORT_KEYS):
            condition = " and ".join([*where, segment])
            sql = f"{select} where {condition} order by {order_by} limit %(limit)s"
            segment_params = {**params, "limit": limit - len(rows), "cursor_value": value, "cursor_key": key}
            rows += await _rows(conn, sql, segment_params)
            if len(rows) == limit:
                break
    if cursor is None and len(rows) < limit and (rows or offset == 0):
        total, exact = offset + len(rows), True  # the last page by offset: the count is known without counting
    else:
        total, exact = await lead_total(conn, lead_filter)
    next_cursor = encode_cursor(sort_by, rows[-1]) if len(rows) == limit else None
    return {
        "total": total,
        "total_exact": exact,
        "limit": limit,
        "offset": offset,
        "next_cursor": next_cursor,
        "leads": rows,
    }


async def lead_total(conn: AsyncConnection, lead_filter: LeadFilter) -> tuple[int, bool]:
    """How many leads match, and whether that is exact. Exact and O(1) from serving_totals (no filter, tier) or
    company_totals (company); company and tier: an index-only count over that company's leads; any search: counted
    up to SEARCH_COUNT_LIMIT (1,000), past which the total is that lower bound and not exact."""
    company, tier, search = lead_filter.company, lead_filter.tier, lead_filter.search
    if not search and company is None:
        column = tier if tier in TIERS else "leads"
        return (await _one(conn, f"select {column} as n from serving_totals"))["n"], True
    if not search and tier is None:
        sql = "select coalesce(sum(leads), 0)::bigint as n from company_totals where lower(company) = lower(%(c)s)"
        return (await _one(conn, sql, {"c": company}))["n"], True
    where, params = lead_filter.where()
    condition = " and ".join(where)
    if not search:
        return (await _one(conn, f"select count(*) as n from leaderboard where {condition}", params))["n"], True
    sql = f"select count(*) as n from (select 1 from leaderboard where {condition} limit %(cap)s) as matches"
    n = (await _one(conn, sql, {**params, "cap": SEARCH_COUNT_LIMIT + 1}))["n"]
    return (n, True) if n <= SEARCH_COUNT_LIMIT else (SEARCH_COUNT_LIMIT, False)


def export_leads_query(lead_filter: LeadFilter) -> tuple[str, dict[str, Any]]:
    """Every lead matching the filter, rank order, with timestamps as ISO-8601 UTC text (CSV and JSON alike)."""
    where, params = lead_filter.where()
    condition = " and ".join(where) or "true"
    sql = f"""
        select lead_key, email, name, company, score, tier, score_at_last_event, event_count,
            {iso("first_event_at")} as first_event_at, {iso("last_event_at")} as last_event_at
        from leaderboard
        where {condition}
        order by score desc, lead_key
    """
    return sql, params


def iso(column: str) -> str:
    """A timestamptz as ISO-8601 UTC text ("2026-11-20T10:00:00Z", fractions only when present)."""
    return f"""rtrim(rtrim(to_char({column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z'"""


# Left join: an event landed but not yet scored is exported with empty scoring columns. An export, not a
# request-time read: it streams every event once, in the primary key order of both tables.
EXPORT_EVENTS_QUERY = f"""
    select e.event_id, coalesce(a.lead_key, e.lead_key) as lead_key, e.event_type,
        {iso("e.event_time")} as event_time, e.source,
        h.points, h.decay, h.change, h.score_after, e.duplicates, e.conflicts
    from clean_events as e
    left join lead_aliases as a on a.identity_key = e.lead_key
    left join score_history as h
        on h.lead_key = coalesce(a.lead_key, e.lead_key) and h.event_time = e.event_time and h.event_id = e.event_id
    order by e.lead_key, e.event_time, e.event_id
"""


# --- one lead ----------------------------------------------------------------------------------------

# The lead's bucket, computed from its key as Postgres does: the planner then reads that one partition of a
# table partitioned by bucket (migrations 0009, 0011) instead of probing all of them.
_OF_ITS_BUCKET = f"lead_bucket = {lead_bucket_sql(LEAD_BUCKETS, '%(lead_key)s')}"


async def resolve_lead_key(conn: AsyncConnection, key: str) -> str:
    """The lead a key counts for (SPEC §3): itself, or the lead it was joined into."""
    row = await _one(conn, "select lead_key from lead_aliases where identity_key = %(key)s", {"key": key})
    return key if row is None else row["lead_key"]


async def lead_identities(conn: AsyncConnection, lead_key: str, most: int) -> dict[str, Any] | None:
    """The emails and ids joined into a lead, and the ids seen with its emails but left apart (identity_links and
    lead_aliases, by their keys). None when the lead has no score."""
    scored = f"select 1 from lead_scores where lead_key = %(lead_key)s and {_OF_ITS_BUCKET}"
    if await _one(conn, scored, {"lead_key": lead_key}) is None:
        return None
    joined = await _rows(
        conn, "select identity_key from lead_aliases where lead_key = %(lead_key)s", {"lead_key": lead_key}
    )
    keys = [row["identity_key"] for row in joined]
    emails = [key for key in [lead_key, *keys] if not key.startswith("id:")]
    joined_ids = {key.removeprefix("id:") for key in keys if key.startswith("id:")}
    own_id = lead_key.removeprefix("id:") if lead_key.startswith("id:") else None  # an id's own lead
    email_rows = await _rows(
        conn,
        """select email, sum(events)::int as events, min(first_at) as first_event_at from identity_links
           where email = any(%(emails)s) group by email order by min(first_at), email""",
        {"emails": emails},
    )
    ids = await _rows(
        conn,
        """select l.external_id, count(*)::int as emails from identity_links l
           where l.external_id in (select external_id from identity_links where email = any(%(emails)s))
              or l.external_id = any(%(ids)s)
           group by l.external_id order by l.external_id""",
        {"emails": emails, "ids": sorted(joined_ids | {own_id} - {None})},
    )
    for row in email_rows:
        row["why"] = (
            "the lead's key: the email of its earliest event" if row["email"] == lead_key else "joined through an id"
        )
    linked, apart = [], []
    for row in ids:
        if row["external_id"] in joined_ids:
            linked.append({**row, "why": f"seen with {row['emails']} email(s), at most {most}: joined"})
        else:
            apart.append({**row, "why": f"seen with {row['emails']} emails, more than {most}: left apart"})
    if own_id is not None and not any(row["external_id"] == own_id for row in apart):
        linked.append({"external_id": own_id, "emails": 0, "why": "seen with no email: its own lead"})
    return {"lead_key": lead_key, "max_emails_per_id": most, "emails": email_rows, "external_ids": linked,
            "ambiguous_ids": apart}  # fmt: skip


async def lead_detail(conn: AsyncConnection, lead_key: str) -> dict[str, Any] | None:
    lead = await _one(
        conn,
        f"""select {LEAD_COLUMNS}, score_at_last_event, first_event_at, event_count as events, as_of
            from leaderboard where lead_key = %(lead_key)s and {_OF_ITS_BUCKET}""",
        {"lead_key": lead_key},
    )
    if lead is None:
        return None
    by_type = await _rows(
        conn,
        """select event_type, events, points from lead_event_stats
           where lead_key = %(lead_key)s and events > 0 order by points desc, event_type""",
        {"lead_key": lead_key},
    )
    return {**lead, "points_by_event_type": by_type}


async def lead_history(
    conn: AsyncConnection, lead_key: str, limit: int, offset: int, until: datetime | None = None
) -> dict[str, Any] | None:
    """Newest first off the primary key (lead_key, event_time, event_id), read backwards; total by index-only count.
    With `until`, only the events at or before it (the same index range, cut at its end)."""
    params = {"lead_key": lead_key, "limit": limit, "offset": offset, "until": until}
    of_lead = f"lead_key = %(lead_key)s and {_OF_ITS_BUCKET}" + (
        "" if until is None else " and event_time <= %(until)s"
    )
    total = (await _one(conn, f"select count(*) as n from score_history where {of_lead}", params))["n"]
    if total == 0:
        return None
    rows = await _rows(
        conn,
        f"""select event_id, event_type, event_time, points, decay, change, score_after, note,
                  identity_key as sent_as, coalesce(string_to_array(joins, ', '), '{{}}') as joins
           from score_history
           where {of_lead} order by event_time desc, event_id desc
           limit %(limit)s offset %(offset)s""",
        params,
    )
    return {"lead_key": lead_key, "total": total, "history": rows}


async def recent_scores(conn: AsyncConnection, lead_key: str, until: datetime, limit: int) -> list[dict[str, Any]]:
    """The lead's latest `limit` history rows at or before `until` (event_time, score_after), oldest first."""
    rows = await _rows(
        conn,
        f"""select event_time, score_after from score_history
            where lead_key = %(lead_key)s and {_OF_ITS_BUCKET} and event_time <= %(until)s
            order by event_time desc, event_id desc limit %(limit)s""",
        {"lead_key": lead_key, "until": until, "limit": limit},
    )
    return rows[::-1]


async def last_scored_by(conn: AsyncConnection, lead_key: str, as_of: datetime) -> dict[str, Any] | None:
    """The lead's score after its last event at or before `as_of`, and that event's time: one probe of the primary
    key, read backwards from `as_of`."""
    return await _one(
        conn,
        f"""select score_after as score_at_last_event, event_time as last_event_at from score_history
            where lead_key = %(lead_key)s and {_OF_ITS_BUCKET} and event_time <= %(as_of)s
            order by event_time desc, event_id desc limit 1""",
        {"lead_key": lead_key, "as_of": as_of},
    )


async def lead_as_of(conn: AsyncConnection, lead_key: str, as_of: datetime) -> dict[str, Any] | None:
    """One lead as its history stood at `as_of`: the score after its last event then (off the primary key, read
    backwards from `as_of`), its events and points by type through then, its profile as it is now. The caller
    decays the score to `as_of`. None when the lead had no event by then."""
    last = await last_scored_by(conn, lead_key, as_of)
    if last is None:
        return None
    params = {"lead_key": lead_key, "as_of": as_of}
    of_lead = f"lead_key = %(lead_key)s and {_OF_ITS_BUCKET} and event_time <= %(as_of)s"
    by_type = await _rows(
        conn,
        f"""select event_type, count(*) as events, sum(points) as points, min(event_time) as first_event_at
            from score_history where {of_lead} group by event_type order by points desc, event_type""",
        params,
    )
    profile = await _one(
        conn,
        f"select lead_key, email, name, company from leaderboard where lead_key = %(lead_key)s and {_OF_ITS_BUCKET}",
        params,
    )
    return {
        **(profile or {"lead_key": lead_key, "email": None, "name": None, "company": None}),
        **last,
        "first_event_at": min(row.pop("first_event_at") for row in by_type),
        "events": sum(row["events"] for row in by_type),
        "points_by_event_type": by_type,
    }


async def leaderboard_as_of(
    conn: AsyncConnection, limit: int, as_of: datetime, as_of_day: int, params: ScoringParams
) -> list[dict[str, Any]]:
    """The top `limit` leads by their score at `as_of` (ties by lead_key): each lead's last history row at or before
    it, decayed to it as SPEC §4's current_score does (the expression is fold.current_score's, in SQL; a test holds
    them equal). It reads every history row up to `as_of`: its cost is in the README."""
    top = await _rows(
        conn,
        """with last as (
               select distinct on (lead_key) lead_key, score_after, event_time
               from score_history where event_time <= %(as_of)s
               order by lead_key, event_time desc, event_id desc
           ),
           decayed as (
               select lead_key, event_time as last_event_at,
                   greatest(%(floor)s, score_after - %(decay_points)s * greatest(0,
                       %(as_of_day)s - (floor(extract(epoch from event_time) / 86400)::bigint + %(inactivity_days)s)))
                       as score
               from last
           )
           select lead_key, score, last_event_at from decayed order by score desc, lead_key limit %(limit)s""",
        {
            "as_of": as_of,
            "as_of_day": as_of_day,
            "limit": limit,
            "floor": params.floor,
            "decay_points": params.decay_points,
            "inactivity_days": params.inactivity_days,
        },
    )
    # Profiles as they are now, by key: the top's few leads off current_scores' primary key.
    profiles = await _rows(
        conn,
        "select lead_key, email, name, company from current_scores where lead_key = any(%(keys)s)",
        {"keys": [row["lead_key"] for row in top]},
    )
    by_key = {profile["lead_key"]: profile for profile in profiles}
    empty = {"email": None, "name": None, "company": None}
    return [{**by_key.get(row["lead_key"], empty), **row} for row in top]


# --- analytics -----------------------------------------------------------------------------------------


async def summary(conn: AsyncConnection) -> dict[str, Any]:
    """Maintained totals (one row) and the active rules (a handful)."""
    row = await _one(
        conn,
        """select leads, events, duplicates, conflicts, rejections, total_points, cold, warm, hot, qualified,
               (select count(*) from rules where active) as active_rules
           from serving_totals""",
    )
    tiers = {tier: row.pop(tier) for tier in TIERS}
    return {**row, "tiers": tiers}


async def companies(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    return await _rows(
        conn,
        "select * from company_summary order by leads desc, total_score desc, company limit %(limit)s",
        {"limit": limit},
    )


async def events_per_period(conn: AsyncConnection, unit: str, start: date) -> list[dict[str, Any]]:
    """Events per day or month and type from `start` on (unit is 'day' or 'month', whitelisted by the caller)."""
    return await _rows(
        conn,
        f"""select date_trunc('{unit}', day)::date as period, event_type, sum(events)::int as events
            from daily_events where day >= %(start)s group by 1, 2""",
        {"start": start},
    )


async def event_type_totals(conn: AsyncConnection) -> list[dict[str, Any]]:
    return await _rows(conn, "select * from event_type_summary order by events desc, event_type")


# --- pipeline status -------------------------------------------------------------------------------------


async def pipeline_status(conn: AsyncConnection, shown: int) -> dict[str, Any]:
    row = await _one(
        conn,
        """select
               (select coalesce(max(seq), 0) from raw_deliveries) as landed_through,
               s.deduped_through,
               s.served_through as scored_through,
               s.rules_version,
               (select min(rules_version) from bucket_state) as scored_rules_version,
               s.last_microbatch_at,
               s.last_replay_at,
               s.last_decay_at,
               (select count(*) from quarantined_deliveries) as quarantined
           from pipeline_state s""",
    )
    latest = await _rows(
        conn,
        """select seq, event_id, lead_key, step, reason, quarantined_at from quarantined_deliveries
           order by quarantined_at desc, seq desc limit %(shown)s""",
        {"shown": shown},
    )
    return {**row, "lag": row["landed_through"] - row["scored_through"], "quarantined_latest": latest}


# --- live stream (psycopg async; api/stream.py owns the connections) ----------------------------------------

STREAM_TOP = 100  # ranks are given for leads in the top 100
_STREAM_COLUMNS = "lead_key, score, tier, change_id, previous_score, name, company, email, last_event_at"
STREAM_SNAPSHOT = f"select {_STREAM_COLUMNS} from leaderboard order by score desc, lead_key limit {STREAM_TOP}"
STREAM_CHANGES = f"select {_STREAM_COLUMNS} from leaderboard where change_id > %s order by change_id"
STREAM_TOP_KEYS = f"select lead_key from leaderboard order by score desc, lead_key limit {STREAM_TOP}"
# Backward scan of the index current_scores_change.
STREAM_LAST_CHANGE = "select coalesce(max(change_id), 0) as id from current_scores"


# --- event receipts --------------------------------------------------------------------------------------

# What makes two deliveries of one event id the same event (a duplicate) or not (a conflict).
RECEIPT_CONTENT = (
    "event_type", "event_time", "lead_key", "email", "external_id", "name", "company", "source", "metadata",
)  # fmt: skip


async def event_deliveries(conn: AsyncConnection, event_id: str) -> list[dict[str, Any]]:
    """Every delivery of an event id in landing order (index raw_deliveries_event_id), each with the quarantine's
    `reason` and cut-short `quarantined_lead_key` when it was set aside (primary key of quarantined_deliveries),
    both null otherwise: two index reads, no join."""
    deliveries = await _rows(
        conn,
        f"""select seq, channel, received_at, {", ".join(RECEIPT_CONTENT)} from raw_deliveries
            where event_id = %(id)s order by seq""",
        {"id": event_id},
    )
    if not deliveries:
        return []
    quarantined = {
        row["seq"]: row
        for row in await _rows(
            conn,
            """select seq, lead_key, 'set aside at the ' || step || ' step: ' || reason as reason
               from quarantined_deliveries where seq = any(%(seqs)s)""",
            {"seqs": [delivery["seq"] for delivery in deliveries]},
        )
    }
    none: dict[str, Any] = {}
    return [
        {
            **delivery,
            "quarantined_lead_key": quarantined.get(delivery["seq"], none).get("lead_key"),
            "reason": quarantined.get(delivery["seq"], none).get("reason"),
        }
        for delivery in deliveries
    ]


async def event_rejections(conn: AsyncConnection, event_id: str) -> list[dict[str, Any]]:
    """The CSV rows rejected with this event id (index ingest_rejections_event_id), in the order they came."""
    return await _rows(
        conn,
        "select file_name, line, reason, received_at from ingest_rejections where event_id = %(id)s order by id",
        {"id": event_id},
    )


async def event_served(conn: AsyncConnection, event_id: str) -> bool | None:
    """Whether the event has been scored and served; None when it is not a clean event (yet)."""
    row = await _one(
        conn,
        """select seq <= (select served_through from pipeline_state) as served
           from clean_events where event_id = %(id)s""",
        {"id": event_id},
    )
    return None if row is None else row["served"]


# --- CSV rejections --------------------------------------------------------------------------------------

# A count of one file's rows walks its index entries (migration 0007), so it counts up to this many, past which the
# total is a lower bound and total_exact is false.
REJECTION_COUNT_LIMIT = SEARCH_COUNT_LIMIT


async def rejection_page(conn: AsyncConnection, file_name: str | None, limit: int, offset: int) -> dict[str, Any]:
    """One page of rejected rows, newest files first and in line order within a file (a file's rows land in one
    transaction with one receive time, in line order, so `id` orders them). The total: known from the
    page when it is the last one; else, unfiltered, the maintained counter (serving_totals.rejections, migration
    0005); else (one file) counted up to REJECTION_COUNT_LIMIT."""
    # md5 first so the file index (migration 0007) is used; the name itself then rules out a collision.
    where = "where md5(file_name) = md5(%(file_name)s) and file_name = %(file_name)s" if file_name is not None else ""
    params = {"file_name": file_name, "limit": limit, "offset": offset}
    rows = await _rows(
        conn,
        f"""select * from ingest_rejections {where} order by received_at desc, id
            limit %(limit)s offset %(offset)s""",
        params,
    )
    if len(rows) < limit and (rows or offset == 0):
        total, exact = offset + len(rows), True  # the last page: the count is known without counting
    elif file_name is None:
        total, exact = (await _one(conn, "select rejections as n from serving_totals"))["n"], True
    else:
        sql = f"select count(*) as n from (select 1 from ingest_rejections {where} limit %(cap)s) as matches"
        n = (await _one(conn, sql, {**params, "cap": REJECTION_COUNT_LIMIT + 1}))["n"]
        exact = n <= REJECTION_COUNT_LIMIT
        # Past the cap, a lower bound: never below the rows this page has shown to be there.
        total = n if exact else max(REJECTION_COUNT_LIMIT, offset + len(rows))
    return {"total": total, "total_exact": exact, "rejections": rows}


# --- scoring rules: read inside the rules writers' transactions too, so on their SQLAlchemy connection ----------

RULE_COLUMNS = "event_type, points, active, max_per_day, updated_at"


def rules_version(conn: Connection) -> int:
    return conn.exec_driver_sql("select rules_version from pipeline_state").scalar_one()


def rule_set_version(conn: Connection) -> int | None:
    return conn.exec_driver_sql("select max(version) from rule_versions").scalar_one()


def rule_versions(conn: Connection, limit: int, offset: int) -> dict[str, Any]:
    """Newest first, off the primary key; each with what changed, not the whole set (GET one version for that)."""
    rows = conn.exec_driver_sql(
        f"select {VERSION_COLUMNS} from rule_versions order by version desc limit %(limit)s offset %(offset)s",
        {"limit": limit, "offset": offset},
    ).mappings()
    total = conn.exec_driver_sql("select count(*) from rule_versions").scalar_one()
    return {"total": total, "versions": [dict(row) for row in rows]}


def rule_version(conn: Connection, version: int) -> dict[str, Any] | None:
    row = (
        conn.exec_driver_sql(
            f"select {VERSION_COLUMNS}, rules from rule_versions where version = %(version)s", {"version": version}
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def rules(conn: Connection) -> list[dict[str, Any]]:
    return [
        dict(row) for row in conn.exec_driver_sql(f"select {RULE_COLUMNS} from rules order by event_type").mappings()
    ]


def rule(conn: Connection, event_type: str) -> dict[str, Any] | None:
    """One rule by its (normalized) event type, off the primary key."""
    sql = f"select {RULE_COLUMNS} from rules where event_type = %(t)s"
    row = conn.exec_driver_sql(sql, {"t": event_type}).mappings().first()
    return None if row is None else dict(row)


# OWASP CSV injection: a spreadsheet runs a cell starting with one of these as a formula (tab and CR too: some
# strip them first). Such a cell gets a leading `'`, which spreadsheets read as "this is text". Every cell: a
# negative number (a refund's -50) becomes the text '-50 too, so that no cell of an export starts with one of them;
# the JSON exports keep numbers as numbers.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BOOL_OID = pg_types["bool"].oid  # COPY writes t/f, a ::text cast true/false: kept as it is, it cannot start one
_FORMULA_STARTS_SQL = ", ".join("E'" + char.encode("unicode_escape").decode() + "'" for char in FORMULA_STARTS)


def spreadsheet_safe(conn: psycopg.Connection, query: str, params: dict) -> str:
    """The query with each column escaped against formulas (FORMULA_STARTS), in SQL: Postgres applies it to the
    whole stream as COPY writes it, with no Python per cell (an export runs to a million leads)."""
    columns = conn.execute(f"select * from ({query}) as export limit 0", params).description
    selected = []
    for column in columns:
        name = sql.Identifier(column.name).as_string(conn)
        if column.type_code == _BOOL_OID:
            selected.append(name)
            continue
        text = f"{name}::text"  # a text cast is the type's output function, what COPY writes: nothing else changes
        escaped = f"case when left({text}, 1) in ({_FORMULA_STARTS_SQL}) then '''' || {text} else {text} end"
        selected.append(f"{escaped} as {name}")
    return f"select {', '.join(selected)} from ({query}) as export"
