"""For random multi-channel delivery streams, micro-batches, a full replay and the SPEC §4 fold agree."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore_pipeline.buckets import bucket_groups
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.db.watermarks import WATERMARKS
from leadscore_pipeline.ingest.accept import accept_events
from leadscore_pipeline.ingest.csv_batches import land_csv
from leadscore_pipeline.ingest.webhook import segment_records
from leadscore_pipeline.microbatch import run_all_steps
from leadscore_pipeline.refresh import Scope, microbatched_through
from leadscore_pipeline.scoring.params import DEFAULT_RULES, ScoringParams
from leadscore_pipeline.settings import get_settings
from tests.conftest import reset_database
from tests.pipeline.helpers import assert_serving_tables_exact
from tests.settings_env import settings_env
from tests.unit.test_fold import EPOCH, reference_history
from tests.unit.test_identity import reference_lead_keys

PARAMS = ScoringParams()
RECEIVED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# Three midnights past the inactivity window of events without a timestamp (received at RECEIVED), so
# current scores decay by a few steps rather than straight to the floor.
AS_OF = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
START = datetime(2026, 6, 1, tzinfo=UTC)
SPAN_DAYS = 150  # well past INACTIVITY_DAYS, so decay shows up both between events and at AS_OF
MICROS_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Identity:
    """Who an event says it is from, as the sender spells it (SPEC §3 derives the lead from all events' identities)."""

    email: str | None
    lead_id: str | None

    @property
    def normalized_email(self) -> str | None:
        return self.email.strip().lower() if self.email else None


# Emails are trimmed and lower-cased; ids are compared as exact strings. Events carry one or both, so ids link
# to emails (joining leads), and an id seen with several emails turns ambiguous (splitting them again).
EMAILS = (" Ann@Acme.IO", "bo@beta.org", "cy@corp.io")
LEAD_IDS = ("crm-2", "crm-3", "77")
IDENTITIES = st.one_of(
    st.builds(Identity, st.sampled_from(EMAILS), st.none()),
    st.builds(Identity, st.none(), st.sampled_from(LEAD_IDS)),
    st.builds(Identity, st.sampled_from(EMAILS), st.sampled_from(LEAD_IDS)),
)
# Sent in any case: the validator upper-cases. No spaces or dashes, so webhook names map 1:1.
EVENT_TYPES = (*DEFAULT_RULES, "WEBINAR_JOINED")  # the last one has no default rule
CHANNELS = ("api", "batch", "csv", "webhook")


@dataclass(frozen=True)
class Sent:
    """One delivery of an event, as the sender spells it."""

    event_id: str
    event_type: str
    lead: Identity
    time: datetime | None  # None: no timestamp, so the receive time
    offset_hours: int  # the UTC offset the timestamp is written in

    def timestamp(self) -> str | None:
        if self.time is None:
            return None
        text = self.time.astimezone(timezone(timedelta(hours=self.offset_hours))).isoformat()
        return text.replace("+00:00", "Z")

    def identity(self) -> tuple[str | None, str | None, datetime, str]:
        return self.lead.normalized_email, self.lead.lead_id, self.time or RECEIVED, self.event_id


@dataclass(frozen=True)
class Delivery:
    """One request or file: its deliveries in row order, the channel, and whether a micro-batch follows."""

    channel: str
    sent: list[Sent]
    microbatch_after: bool


@st.composite
def streams(draw) -> list[Delivery]:
    leads = draw(st.lists(IDENTITIES, min_size=1, max_size=5))
    count = draw(st.integers(1, 25))
    # Commas, quotes and non-ASCII exercise CSV quoting; ids are compared as exact strings.
    ids = draw(st.lists(st.text('ab0-:,"é', min_size=1, max_size=5), min_size=count, max_size=count, unique=True))
    fresh = st.integers(0, SPAN_DAYS * MICROS_PER_DAY).map(lambda us: START + timedelta(microseconds=us))
    midnight = st.integers(0, SPAN_DAYS).map(lambda days: START + timedelta(days=days))
    # A few shared instants make ties that the event_id must break.
    shared = draw(st.lists(fresh, min_size=1, max_size=3))
    times = st.one_of(st.sampled_from(shared), fresh, midnight, st.none())
    types = st.sampled_from(EVENT_TYPES).flatmap(lambda t: st.sampled_from([t, t.lower(), t.title()]))
    offsets = st.sampled_from([0, 2, -5])
    events = [Sent(i, draw(types), draw(st.sampled_from(leads)), draw(times), draw(offsets)) for i in ids]

    def redelivery(original: Sent) -> st.SearchStrategy[Sent]:
        # Identical (maybe spelled differently), or with changed content: it must lose to the first landed.
        return st.one_of(
            st.builds(replace, st.just(original), offset_hours=offsets),
            st.builds(replace, st.just(original), event_type=types),
            st.builds(replace, st.just(original), time=times),
            st.builds(replace, st.just(original), lead=IDENTITIES),
        )

    redeliveries = draw(st.lists(st.sampled_from(events).flatmap(redelivery), max_size=8))
    # Any arrival order: late events, and a redelivery may even land before the event it repeats.
    arrivals = draw(st.permutations(events + redeliveries))
    parts = draw(st.integers(1, min(5, len(arrivals))))
    cuts = sorted(draw(st.permutations(range(1, len(arrivals))))[: parts - 1])
    bounds = [0, *cuts, len(arrivals)]
    return [
        Delivery(draw(st.sampled_from(CHANNELS)), arrivals[start:end], draw(st.booleans()))
        for start, end in pairwise(bounds)
    ]


# --- landing through the real channels -----------------------------------------------------------------


def record(sent: Sent) -> dict:
    fields = {
        "event_id": sent.event_id,
        "event_type": sent.event_type,
        "timestamp": sent.timestamp(),
        "email": sent.lead.email,
        "lead_id": sent.lead.lead_id,
    }
    return {key: value for key, value in fields.items() if value is not None}


def segment_object(sent: Sent) -> dict:
    item: dict = {"messageId": sent.event_id, "event": sent.event_type}
    if sent.timestamp() is not None:
        item["timestamp"] = sent.timestamp()
    if sent.lead.lead_id is not None:
        item["userId"] = sent.lead.lead_id
    if sent.lead.email is not None:
        item["traits"] = {"email": sent.lead.email}
    return item


def csv_bytes(sent: list[Sent]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["event_id", "event_type", "lead_id", "email", "timestamp", "metadata"])
    for s in sent:
        writer.writerow([s.event_id, s.event_type, s.lead.lead_id, s.lead.email, s.timestamp(), ""])
    return text.getvalue().encode()


def deliver(conn: psycopg.Connection, number: int, delivery: Delivery) -> None:
    options = {"settings": get_settings(), "received_at": RECEIVED}
    if delivery.channel == "api":  # one request per event
        for sent in delivery.sent:
            with conn.transaction():
                accept_events(conn, [record(sent)], channel="api", **options)
    elif delivery.channel == "batch":
        with conn.transaction():
            accept_events(conn, [record(s) for s in delivery.sent], channel="batch", **options)
    elif delivery.channel == "webhook":
        payload = [segment_object(s) for s in delivery.sent]
        with conn.transaction():
            accept_events(conn, segment_records(payload, f"wh-{number}"), channel="webhook", **options)
    else:
        stream = io.BytesIO(csv_bytes(delivery.sent))
        with conn.transaction():
            result = land_csv(conn, stream, file_name=f"part-{number}.csv", channel="csv", **options)
        assert (result.accepted, result.rejected) == (len(delivery.sent), 0), result.errors


# --- running the pipeline and reading what it wrote ------------------------------------------------------


# What a replay rebuilds from the deliveries, the identity graph included.
DERIVED = (
    "clean_events, lead_scores, score_history, current_scores, daily_event_counts, lead_event_stats,"
    " identity_links, lead_aliases, identity_rescores, restaged_leads"
)


def forget_derived(conn: psycopg.Connection) -> None:
    conn.execute(f"truncate {DERIVED} restart identity")
    conn.execute("update pipeline_state set identity_max_emails = null")


def run_steps(conn: psycopg.Connection, scope: Scope) -> None:
    run_all_steps(conn, scope, as_of=AS_OF)  # with the default settings, whose scoring params are PARAMS


def catch_up_then_microbatch(conn: psycopg.Connection, per_run: int) -> dict[str, list[tuple]]:
    forget_derived(conn)
    conn.execute("truncate bulk_progress")
    (fence,) = conn.execute("select coalesce(max(seq), 0) / 2 from raw_deliveries").fetchone()
    conn.execute(f"update pipeline_state set bulk_through = {fence}, {' , '.join(f'{w} = 0' for w in WATERMARKS)}")
    for group in reversed(bucket_groups(per_run)):
        assert microbatched_through(conn) == 0  # no step moves on before every bucket is through the fence
        run_steps(conn, Scope(buckets=group, through_seq=fence))
    assert microbatched_through(conn) == fence
    # The micro-batches past the fence also rescore the leads whose keys resolved anew as the groups landed.
    run_steps(conn, Scope(incremental=True))
    assert conn.execute("select count(*) from identity_rescores").fetchone() == (0,)
    return snapshot(conn)


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    # Byte order (collate "C") is Python's and Polars' string order, whatever the database's locale.
    queries = {
        "clean_events": (
            "select event_id, seq, lead_key, event_type, event_time, duplicates, conflicts"
            ' from clean_events order by event_id collate "C"'
        ),
        "lead_scores": (
            'select lead_key, score_at_last_event, last_event_at from lead_scores order by lead_key collate "C"'
        ),
        "score_history": (
            "select lead_key, event_id, event_type, event_time, points, decay, change, score_after, note"
            ' from score_history order by lead_key collate "C", event_time, event_id collate "C"'
        ),
        "current_scores": 'select lead_key, score, tier from current_scores order by lead_key collate "C"',
    }
    return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


def steps(previous: datetime, current: datetime) -> int:
    def utc_day(moment: datetime) -> int:
        return (moment - EPOCH) // timedelta(days=1)

    return max(0, utc_day(current) - (utc_day(previous) + PARAMS.inactivity_days))


# Rules as the API stores them: the defaults' points, some inactive, some with a daily limit (small, so that
# the shared instants, midnights and receive times of a stream reach it).
rule_sets = st.dictionaries(
    st.sampled_from(EVENT_TYPES),
    st.tuples(st.integers(-1000, 1000), st.booleans(), st.one_of(st.none(), st.integers(1, 2))),
    max_size=len(EVENT_TYPES),
)


def store_rules(conn: psycopg.Connection, rules: dict[str, tuple[int, bool, int | None]]) -> None:
    conn.execute("delete from rules")
    for event_type, (points, active, max_per_day) in rules.items():
        conn.execute(
            "insert into rules (event_type, points, active, max_per_day) values (%s, %s, %s, %s)",
            (event_type, points, active, max_per_day),
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stream=streams(),
    per_run=st.sampled_from([1, 3, 4, 16]),
    chunk_rows=st.sampled_from([1, 1_000_000]),
    most_emails=st.sampled_from([1, 2]),
    drawn_rules=rule_sets,
)
def test_microbatches_replay_and_fold_agree(database_url, stream, per_run, chunk_rows, most_emails, drawn_rules):
    reset_database(database_url)
    with (
        psycopg.connect(libpq_url(database_url), autocommit=True) as conn,
        settings_env(LEADSCORE_REBUILD_CHUNK_ROWS=str(chunk_rows), LEADSCORE_MAX_EMAILS_PER_ID=str(most_emails)),
    ):
        store_rules(conn, drawn_rules)
        for number, delivery in enumerate(stream):
            deliver(conn, number, delivery)
            if delivery.microbatch_after:
                run_steps(conn, Scope(incremental=True))
                assert_serving_tables_exact(conn)
        run_steps(conn, Scope(incremental=True))
        incremental = snapshot(conn)
        # The serving aggregates (totals, companies, event types) equal their recomputation from the tables.
        assert_serving_tables_exact(conn)
        run_steps(conn, Scope())
        replayed = snapshot(conn)
        assert_serving_tables_exact(conn)
        # A replay as Dagster runs it, a run per group of buckets, rebuilds the same from nothing derived.
        forget_derived(conn)
        for group in bucket_groups(per_run):
            run_steps(conn, Scope(buckets=group))
        # Leads whose keys resolve into another group's buckets are rescored by the micro-batch that follows.
        run_steps(conn, Scope(incremental=True))
        by_groups = snapshot(conn)
        assert_serving_tables_exact(conn)
        # The bulk path: a catch-up through a fence a run per group (in any order), then micro-batches past it.
        caught_up = catch_up_then_microbatch(conn, per_run)
        assert_serving_tables_exact(conn)
        rules = {
            t: (p, a, k) for t, p, a, k in conn.execute("select event_type, points, active, max_per_day from rules")
        }

    assert replayed == incremental
    assert by_groups == incremental
    assert caught_up == incremental

    # SPEC §3: the first delivery of an event_id in landing order (row order within a request) is the event.
    landed = [sent for delivery in stream for sent in delivery.sent]
    firsts: dict[str, Sent] = {}
    for sent in landed:
        firsts.setdefault(sent.event_id, sent)
    # SPEC §3: the lead of each event from the identities of all events, whatever order they arrived in.
    lead_of = reference_lead_keys([sent.identity() for sent in firsts.values()], most_emails)
    events = [(lead_of[s.event_id], s.event_id, s.event_type.upper(), s.time or RECEIVED) for s in firsts.values()]
    expected_history = reference_history(events, rules, PARAMS)

    assert incremental["score_history"] == expected_history.rows()
    # Every later delivery of an event counts as a duplicate, whatever its channel or content.
    duplicates = {event_id: sum(s.event_id == event_id for s in landed) - 1 for event_id in firsts}
    assert {row[0]: row[5] for row in incremental["clean_events"]} == duplicates

    final = {}  # lead_key -> (score_at_last_event, last_event_at), from the reference's last row per lead
    for lead_key, event_time, score_after in expected_history.select("lead_key", "event_time", "score_after").rows():
        final[lead_key] = (score_after, event_time)
    assert incremental["lead_scores"] == [(key, *final[key]) for key in sorted(final)]
    current = {key: max(PARAMS.floor, s - PARAMS.decay_points * steps(last, AS_OF)) for key, (s, last) in final.items()}
    assert {row[0]: row[1] for row in incremental["current_scores"]} == current
