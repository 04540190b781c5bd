"""The stored identity graph (migration 0013): links, the aliases resolved from them, and the leads to rescore.

Links are kept by the dedup steps, as a function of the clean events of each email's bucket. When they change, the
aliases of the keys they concern are resolved again (scoring.identity), and each lead that gains or loses events by
it is queued in identity_rescores; the next micro-batch rescores it from its whole history. Writers take
IDENTITY_LOCK after their bucket locks, so two bucket groups' rebuilds resolve one after the other.

Reads of other buckets' clean events are made in a savepoint rolled back at once: its share locks go with it, so
they never hold up another group's partition swap (which waits for them without queueing, `db.partitions`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import polars as pl
import psycopg

from leadscore_pipeline.buckets import LEAD_BUCKETS, lead_bucket_sql
from leadscore_pipeline.db.frames import copy_frame, read_frame
from leadscore_pipeline.db.locks import IDENTITY_LOCK, buckets_sql, lock
from leadscore_pipeline.db.partitions import partition_name, staged
from leadscore_pipeline.scoring.identity import (
    ALIAS_SCHEMA,
    ID_EMAILS_SCHEMA,
    ID_PREFIX,
    LINK_SCHEMA,
    resolve_aliases,
)
from leadscore_pipeline.settings import get_settings

_LINKS = ", ".join(LINK_SCHEMA)
ALIAS_BUCKETS_SCHEMA = {**ALIAS_SCHEMA, "identity_bucket": pl.Int16, "lead_bucket": pl.Int16}
GLOBAL_RESOLVE_KEYS = 50_000


def _links(conn: psycopg.Connection, where: str, params: dict | None = None) -> pl.DataFrame:
    return read_frame(conn, f"select {_LINKS} from identity_links where {where}", LINK_SCHEMA, params)


def _differing(stored: pl.DataFrame, fresh: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """The rows of either that the other has not, comparing `key`."""
    return pl.concat(
        [
            stored.join(fresh, on=key, how="anti", nulls_equal=True),
            fresh.join(stored, on=key, how="anti", nulls_equal=True),
        ]
    )


def _replace_links(conn: psycopg.Connection, where: str, params: dict, fresh: pl.DataFrame) -> tuple[set, set]:
    """Make the links matching `where` `fresh`; returns the emails and ids of the links that appear, go, or move
    their earliest time (what resolving depends on; a count alone changes no lead)."""
    stored = _links(conn, where, params)
    if not _differing(stored, fresh, list(LINK_SCHEMA)).is_empty():
        conn.execute(
            psycopg.sql.SQL(f"delete from identity_links where {where}").format(
                **{k: psycopg.sql.Literal(v) for k, v in params.items()}
            )
        )
        copy_frame(conn, "identity_links", fresh.select(list(LINK_SCHEMA)))
    moved = _differing(stored, fresh, ["email", "external_id", "first_at"])
    return set(moved["email"].to_list()), set(moved["external_id"].drop_nulls().to_list())


def replace_bucket_links(conn: psycopg.Connection, buckets: tuple[int, ...], fresh: pl.DataFrame) -> tuple[set, set]:
    """Make the links of `buckets` `fresh` (a rebuild's); returns the emails and ids whose links changed."""
    return _replace_links(conn, f"lead_bucket in {buckets_sql(buckets)}", {}, fresh)


def recount_links(conn: psycopg.Connection, emails: Iterable[str]) -> tuple[set, set]:
    """Recount the links of `emails` from their clean events (an email's events have it as lead_key), after a
    micro-batch added events or a set-aside delivery took one back; returns the emails and ids that changed."""
    emails = sorted(set(emails))
    if not emails:
        return set(), set()
    fresh = read_frame(
        conn,
        """select lead_bucket, email, external_id, count(*)::int, min(event_time) from clean_events
           where lead_key = any({emails}) and email is not null group by lead_bucket, email, external_id""",
        LINK_SCHEMA,
        {"emails": emails},
    )
    return _replace_links(conn, "email = any({emails})", {"emails": emails}, fresh)


def _closure(conn: psycopg.Connection, emails: set[str], ids: set[str], most: int) -> tuple[set[str], set[str]]:
    """Every email and id whose lead may change with the links of `emails` and `ids`: what they reach through
    links, crossing an id only while it joins (at most `most` emails) or when it is one of `ids` (an id that
    became ambiguous splits what it joined: all of that is resolved again)."""
    seen_emails, seen_ids = set(emails), set(ids)
    new_emails, new_ids = set(emails), set(ids)
    while new_emails or new_ids:
        reached = conn.execute(
            """select email, external_id from identity_links
               where external_id is not null and (email = any(%s) or external_id = any(%s))""",
            (list(new_emails), list(new_ids)),
        ).fetchall()
        found_ids = {x for _, x in reached} - seen_ids
        joining = {
            x
            for x, n in conn.execute(
                "select external_id, count(*) from identity_links where external_id = any(%s) group by external_id",
                (list(found_ids),),
            ).fetchall()
            if n <= most
        }
        crossed = new_ids | joining
        new_emails = {e for e, x in reached if x in crossed} - seen_emails
        new_ids = found_ids
        seen_emails |= new_emails
        seen_ids |= new_ids
    return seen_emails, seen_ids


def resolve_again(
    conn: psycopg.Connection, emails: set[str], ids: set[str], staged_buckets: tuple[int, ...] = ()
) -> int:
    """Resolve the aliases of what `emails` and `ids` reach, store those that change, and queue the leads that
    gain or lose events by it. All of them when the merge protection setting is not the one they were resolved
    under. `staged_buckets`: buckets whose clean events are staged (a rebuild), read there. Returns the leads
    queued."""
    most = get_settings().max_emails_per_id
    lock(conn, [IDENTITY_LOCK])
    (resolved_under,) = conn.execute("select identity_max_emails from pipeline_state").fetchone()
    # Past this many changed keys (a first import) one pass over every link beats walking out from each.
    if resolved_under != most or len(emails) + len(ids) > GLOBAL_RESOLVE_KEYS:
        links = _links(conn, "true")
        fresh = resolve_aliases(links, most)
        stored = read_frame(conn, "select identity_key, lead_key from lead_aliases", ALIAS_SCHEMA)
        conn.execute("update pipeline_state set identity_max_emails = %s", (most,))
    elif emails or ids:
        emails, ids = _closure(conn, emails, ids, most)
        links = _links(conn, "email = any({emails})", {"emails": sorted(emails)})
        ids |= set(links["external_id"].drop_nulls().to_list())
        counts = read_frame(
            conn,
            """select external_id, count(*) from identity_links where external_id = any({ids})
               group by external_id""",
            ID_EMAILS_SCHEMA,
            {"ids": sorted(ids)},
        )
        fresh = resolve_aliases(links, most, counts)
        keys = sorted(emails | {ID_PREFIX + x for x in ids})
        stored = read_frame(
            conn,
            "select identity_key, lead_key from lead_aliases where identity_key = any({keys})",
            ALIAS_SCHEMA,
            {"keys": keys},
        )
    else:
        return 0
    moves = (
        stored.join(fresh, on="identity_key", how="full", coalesce=True, suffix="_new")
        .filter(pl.col("lead_key").ne_missing(pl.col("lead_key_new")))
        .select(
            "identity_key",
            old=pl.coalesce("lead_key", "identity_key"),
            new=pl.coalesce("lead_key_new", "identity_key"),
        )
    )
    if moves.is_empty():
        return 0
    _store_aliases(conn, moves, fresh)
    moved = keys_with_events(conn, moves["identity_key"].to_list(), staged_buckets)
    leads = moves.filter(pl.col("identity_key").is_in(moved))
    return queue_rescores(conn, [*leads["old"].to_list(), *leads["new"].to_list()])


def _store_aliases(conn: psycopg.Connection, moves: pl.DataFrame, fresh: pl.DataFrame) -> None:
    conn.execute("create temp table moved_keys (identity_key text, lead_key text) on commit drop")
    copy_frame(conn, "moved_keys", moves.select("identity_key"))
    conn.execute("delete from lead_aliases a using moved_keys m where a.identity_key = m.identity_key")
    conn.execute("truncate moved_keys")
    copy_frame(conn, "moved_keys", fresh.join(moves, on="identity_key", how="semi"))
    conn.execute(
        f"""insert into lead_aliases select identity_key, lead_key, {lead_bucket_sql(LEAD_BUCKETS, "identity_key")},
                   {lead_bucket_sql(LEAD_BUCKETS, "lead_key")} from moved_keys"""
    )
    conn.execute("drop table moved_keys")


def keys_with_events(conn: psycopg.Connection, keys: list[str], staged_buckets: tuple[int, ...] = ()) -> set[str]:
    """Which of `keys` have clean events: each in its bucket's partition (or the one staged for it)."""
    by_bucket: dict[int, list[str]] = defaultdict(list)
    if not keys:
        return set()
    for key, bucket in conn.execute(
        f"select k, {lead_bucket_sql(LEAD_BUCKETS, 'k')} from unnest(%s::text[]) as k", (keys,)
    ).fetchall():
        by_bucket[bucket].append(key)
    found: set[str] = set()
    with conn.transaction(force_rollback=True):  # its share locks go with it
        for bucket, bucket_keys in by_bucket.items():
            table = (
                staged("clean_events", bucket) if bucket in staged_buckets else partition_name("clean_events", bucket)
            )
            rows = conn.execute(f"select distinct lead_key from {table} where lead_key = any(%s)", (bucket_keys,))
            found.update(key for (key,) in rows.fetchall())
    return found


def queue_rescores(conn: psycopg.Connection, leads: Iterable[str]) -> int:
    leads = sorted(set(leads))
    if leads:
        conn.execute("insert into identity_rescores select unnest(%s::text[]) on conflict do nothing", (leads,))
        conn.execute("update pipeline_state set identity_generation = identity_generation + 1")
    return len(leads)


def queue_cross_bucket_leads(conn: psycopg.Connection, buckets: tuple[int, ...]) -> int:
    """After a rebuild staged the clean events of `buckets`: queue the leads of other buckets that keys of these
    resolve to, since their events may have changed and their buckets' scoring may have read them before."""
    outward = conn.execute(
        f"""select identity_key, lead_key from lead_aliases
            where identity_bucket in {buckets_sql(buckets)} and lead_bucket not in {buckets_sql(buckets)}"""
    ).fetchall()
    with_events = keys_with_events(conn, [key for key, _ in outward], buckets)
    return queue_rescores(conn, [lead for key, lead in outward if key in with_events])


def aliases_where(conn: psycopg.Connection, where: str) -> pl.DataFrame:
    """The aliases matching `where` (on lead_aliases), with both buckets."""
    return read_frame(
        conn, f"select {', '.join(ALIAS_BUCKETS_SCHEMA)} from lead_aliases where {where}", ALIAS_BUCKETS_SCHEMA
    )


def pending_identity_work(conn: psycopg.Connection) -> str:
    """What a micro-batch has to do for the identity graph with nothing new landed, as a run key part ("" if
    nothing): leads queued to rescore, or aliases resolved under another merge protection than the setting's."""
    generation, queued, resolved_under, linked = conn.execute(
        """select identity_generation, exists (select 1 from identity_rescores), identity_max_emails,
                  exists (select 1 from identity_links)
           from pipeline_state"""
    ).fetchone()
    most = get_settings().max_emails_per_id
    # Never resolved with no links: an empty database, whose first dedup resolves. With links (a database from
    # before migration 0013), or another setting, a micro-batch resolves them now.
    if not queued and (resolved_under == most or (resolved_under is None and not linked)):
        return ""
    return f"{generation}-{most}"
