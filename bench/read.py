"""The bench's read step: serve a scored database over HTTP as `make up` does and measure every read under load."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.table import number, verdict
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.process_groups import stop_groups

REPO_ROOT = Path(__file__).resolve().parents[1]
CONNECTIONS = 8
READ_SECONDS = 5.0
WARMUP_SECONDS = 1.0
REQUEST_TIMEOUT_SECONDS = 60.0  # today's API answers some reads in seconds at 1M leads: slow is measured, not dropped
STARTUP_TIMEOUT_SECONDS = 60.0
SAMPLE_LEADS = 1_000  # distinct keys the lead detail, history and search reads rotate through
DEEP_OFFSET = 500_000  # page 10,000 at 50 a page
BROAD_SEARCH = "smith"  # a surname bench.generate gives about a tenth of the leads
API_MEMORY_BAR_MIB = 300
FAST_MS, LIST_MS = 25, 50  # the p99 bars: single-row and summary reads; lists, searches, trends


@dataclass
class Read:
    name: str
    paths: list[str]  # rotated through, one per request
    bar_ms: float | None = None


@dataclass
class Measured:
    name: str
    path: str  # the first of the rotated paths, as an example
    paths: int
    client: str
    connections: int
    seconds: float
    requests: int
    errors: int  # non-2xx answers (wrk: status >= 400) plus socket errors and timeouts
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    statuses: dict[str, int] = field(default_factory=dict)
    bar_ms: float | None = None
    ceiling_per_s: float | None = None
    probe_status: int | None = None  # the one request sent before measuring

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def ratio(self) -> float | None:
        return self.per_s / self.ceiling_per_s if self.ceiling_per_s else None

    @property
    def passed(self) -> bool | None:
        if self.bar_ms is None:
            return None
        return self.errors == 0 and self.requests > 0 and self.p99_ms is not None and self.p99_ms < self.bar_ms

    def as_dict(self) -> dict[str, object]:
        bar = None if self.bar_ms is None else f"p99 < {self.bar_ms:g} ms, 0 errors"
        return asdict(self) | {"per_s": self.per_s, "ratio": self.ratio, "bar": bar, "passed": self.passed}


# --- the API process --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def uvicorn_command(port: int) -> list[str]:
    """What `leadscore up` runs for the API (leadscore_pipeline/stack.py): one worker, no access log."""
    script = Path(sys.executable).parent / "uvicorn"
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "uvicorn"]
    return [*launcher, "api.main:app", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]


def get(base: str, path: str, headers: dict[str, str], timeout: float = REQUEST_TIMEOUT_SECONDS) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextmanager
def serve_api(database_url: str, work: Path) -> Iterator[tuple[str, int]]:
    """The API on a free port over `database_url`; yields its base URL and pid once /readyz answers 200."""
    port = free_port()
    log_path = work / "api.log"
    env = os.environ | {"LEADSCORE_DATABASE_URL": database_url, "LEADSCORE_HOME": str(work / "home")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            uvicorn_command(port), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline, answer = time.monotonic() + STARTUP_TIMEOUT_SECONDS, "no answer"
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the API exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                status, body = get(base, "/readyz", {}, timeout=2)
                if status == 200:
                    break
                answer = f"{status} {body.decode(errors='replace')[:300]}"
            except OSError as exc:
                answer = str(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the API was not ready within {STARTUP_TIMEOUT_SECONDS:.0f} s (/readyz: {answer}):\n"
                    f"{log_path.read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield base, process.pid
    finally:
        stop_groups([process.pid], timeout=15)


def memory_mib(pid: int) -> dict[str, float]:
    """VmHWM (peak RSS since start) and VmRSS of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) / 1024  # kB
    return fields


# --- what to read -----------------------------------------------------------------------------------


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def sample(database_url: str) -> tuple[list[str], int, int]:
    """Scored lead keys, a deterministic spread of them; the number of scored leads and of events."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        keys = [
            key
            for (key,) in conn.execute(
                "select lead_key from lead_scores order by md5(lead_key) limit %s", (SAMPLE_LEADS,)
            ).fetchall()
        ]
        (leads,) = conn.execute("select count(*) from lead_scores").fetchone()
        (events,) = conn.execute("select count(*) from clean_events").fetchone()
    return keys, leads, events


def plan_reads(base: str, headers: dict[str, str], keys: list[str], leads: int) -> list[Read]:
    """Every read the issue sets a bar for, with paths found from the data and, where the API knows best, from it."""
    if not keys:
        raise RuntimeError("no scored leads in the database: nothing to read")
    emails = [key for key in keys if "@" in key] or keys
    searches = [key.split("@")[0] for key in emails]  # one lead's name.number: a selective search
    status, body = get(base, "/api/analytics/companies?limit=1", headers)
    companies = json.loads(body).get("companies", []) if status == 200 else []
    deep = min(DEEP_OFFSET, max(0, leads // 2) // 50 * 50)
    reads = [
        Read("healthz (the HTTP ceiling)", ["/healthz"]),
        Read("leaderboard", ["/api/leaderboard"], FAST_MS),
        Read("lead list, page 1", ["/api/leads?limit=50"], LIST_MS),
        Read("lead list, tier=hot", ["/api/leads?limit=50&tier=hot"], LIST_MS),
    ]
    if companies:
        company = companies[0]["company"]
        reads.append(Read(f"lead list, company={company}", [f"/api/leads?limit=50&company={quoted(company)}"], LIST_MS))
    reads += [
        Read("lead list, search one lead", [f"/api/leads?limit=50&search={quoted(s)}" for s in searches], LIST_MS),
        Read(f"lead list, search '{BROAD_SEARCH}'", [f"/api/leads?limit=50&search={BROAD_SEARCH}"], LIST_MS),
    ]
    # A deep page by offset always (it must keep working); by cursor too when the API answers next_cursor,
    # and then the cursor is the one held to the bar.
    status, body = get(base, f"/api/leads?limit=50&offset={max(0, deep - 50)}", headers)
    cursor = json.loads(body).get("next_cursor") if status == 200 and deep > 0 else None
    deep_offset = Read(
        f"lead list, offset {deep:,}", [f"/api/leads?limit=50&offset={deep}"], None if cursor else LIST_MS
    )
    if cursor:
        reads.append(Read(f"lead list, cursor at {deep:,}", [f"/api/leads?limit=50&cursor={quoted(cursor)}"], LIST_MS))
    reads += [
        Read("lead detail (rotating keys)", [f"/api/leads/{quoted(key)}" for key in keys], FAST_MS),
        Read("lead history (rotating keys)", [f"/api/leads/{quoted(key)}/history" for key in keys], FAST_MS),
        Read("analytics summary", ["/api/analytics/summary"], FAST_MS),
        Read("analytics companies", ["/api/analytics/companies"], LIST_MS),
        Read("analytics trends 30d", ["/api/analytics/trends?range=30d"], LIST_MS),
        # The issue names no bar for event types; held to the companies' one, the same kind of small aggregate.
        Read("analytics event types", ["/api/analytics/event-types"], LIST_MS),
        Read("pipeline status", ["/api/pipeline/status"], FAST_MS),
        # Last: its requests take seconds each, and those in flight when its time is up would load the next read.
        deep_offset,
    ]
    return reads


# --- the built-in client: asyncio over raw keep-alive HTTP/1.1 sockets ------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response through its body; its status and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")  # one await for the status line and all headers
    status_line, *header_lines = head[:-4].split(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, keep = 0, False, not status_line.startswith(b"HTTP/1.0")
    for line in header_lines:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection":
            keep = value != b"close"
    if chunked:
        while size := int((await reader.readline()).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # trailers
    elif length:
        await reader.readexactly(length)
    return status, keep


async def client_connection(
    host: str, port: int, requests: list[bytes], start: int, stride: int, stop_at: float, record: dict
) -> None:
    """One keep-alive connection sending requests back to back until `stop_at`; latencies in ns."""
    index, connection = start, None
    loop = asyncio.get_running_loop()
    while loop.time() < stop_at:
        try:
            if connection is None:
                connection = await asyncio.open_connection(host, port)
            reader, writer = connection
            started = time.perf_counter_ns()
            writer.write(requests[index % len(requests)])
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                status, keep = await read_response(reader)
            record["latencies"].append(time.perf_counter_ns() - started)
            record["statuses"][str(status)] += 1
            if not keep:
                writer.close()
                connection = None
        except (
            OSError,
            ValueError,
            IndexError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
        ) as exc:
            record["statuses"][type(exc).__name__] += 1
            if connection is not None:
                connection[1].close()
            connection = None
            await asyncio.sleep(0.01)  # a server that refuses or drops connections is not hammered in a tight loop
        index += stride
    if connection is not None:
        connection[1].close()


async def builtin_load(base: str, paths: list[str], headers: dict[str, str], seconds: float, connections: int) -> dict:
    parsed = urllib.parse.urlsplit(base)
    host, port = parsed.hostname, parsed.port
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    requests = [f"GET {path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n{extra}\r\n".encode() for path in paths]
    record: dict = {"latencies": [], "statuses": Counter()}
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    stop_at = loop.time() + seconds
    await asyncio.gather(
        *(client_connection(host, port, requests, n, connections, stop_at, record) for n in range(connections))
    )
    record["seconds"] = time.perf_counter() - started  # through the last answer, slow ones included
    return record


def run_builtin(base: str, read: Read, headers: dict[str, str], seconds: float, connections: int) -> Measured:
    try:  # a cheaper event loop when the venv has one (uvicorn[standard] brings it); plain asyncio otherwise
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        record = runner.run(builtin_load(base, read.paths, headers, seconds, connections))
    latencies = sorted(record["latencies"])

    def percentile(p: float) -> float | None:
        # nearest rank
        return latencies[max(0, -(-len(latencies) * p // 100) - 1)] / 1e6 if latencies else None

    statuses = dict(record["statuses"])
    answered = sum(count for status, count in statuses.items() if status.isdigit())
    errors = sum(count for status, count in statuses.items() if not status.startswith("2"))
    return Measured(
        read.name, read.paths[0], len(read.paths), "built-in", connections, record["seconds"], answered, errors,
        percentile(50), percentile(99), latencies[-1] / 1e6 if latencies else None, statuses, read.bar_ms,
    )  # fmt: skip


# --- wrk, when installed ----------------------------------------------------------------------------

WRK_SCRIPT = r"""
local paths, counter = {}, 0
local threads = 0
setup = function(thread) threads = threads + 1; thread:set("id", threads) end
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  counter = (id or 1) * 7919
  for name, value in pairs(extra_headers or {}) do wrk.headers[name] = value end
end
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "status": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def run_wrk(base: str, read: Read, headers: dict[str, str], seconds: float, connections: int, work: Path) -> Measured:
    paths_file = work / "paths.txt"
    paths_file.write_text("\n".join(read.paths) + "\n")
    script = work / "reads.lua"
    header_table = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    script.write_text(f"extra_headers = {{{header_table}}}\n" + WRK_SCRIPT)
    threads = max(1, min(os.cpu_count() or 1, connections))
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        f"--timeout={REQUEST_TIMEOUT_SECONDS:.0f}s", "-s", str(script), base + read.paths[0], "--", str(paths_file),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next((x for x in completed.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    figures = json.loads(line.removeprefix("WRKJSON "))
    socket_errors = {k: figures[k] for k in ("connect", "read", "write", "timeout") if figures[k]}
    errors = figures["status"] + sum(socket_errors.values())
    measured = figures["requests"] > 0
    statuses = {"2xx/3xx": figures["requests"] - figures["status"], ">=400": figures["status"], **socket_errors}
    return Measured(
        read.name, read.paths[0], len(read.paths), "wrk", connections, figures["duration_us"] / 1e6,
        figures["requests"], errors, figures["p50_us"] / 1e3 if measured else None,
        figures["p99_us"] / 1e3 if measured else None, figures["max_us"] / 1e3 if measured else None,
        statuses, read.bar_ms,
    )  # fmt: skip


# --- the step ---------------------------------------------------------------------------------------


def choose_client(client: str) -> str:
    if client == "auto":
        return "wrk" if shutil.which("wrk") else "builtin"
    if client == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("--read-client wrk: wrk is not installed (apt-get install -y wrk)")
    return client


def read_step(
    database_url: str, seconds: float = READ_SECONDS, connections: int = CONNECTIONS, client: str = "auto"
) -> dict:
    """Serve `database_url` with the API and measure every read; the figures as a dict for latest.json."""
    client = choose_client(client)
    keys, leads, events = sample(database_url)
    headers = {}
    if read_key := os.environ.get("LEADSCORE_READ_KEY"):
        headers["Authorization"] = f"Bearer {read_key}"
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="leadscore-bench-read-"))
    try:
        with serve_api(database_url, work) as (base, pid):
            memory_at_start = memory_mib(pid)
            reads = plan_reads(base, headers, keys, leads)
            # The API opens its pooled database connections on demand: opened here, before anything is timed.
            run_builtin(base, Read("warm-up", ["/api/leaderboard"]), headers, WARMUP_SECONDS, connections)
            results: list[Measured] = []
            for read in reads:
                probe_status = get(base, read.paths[0], headers)[0]  # warms the pool and the plan, and checks the path
                if client == "wrk":
                    measured = run_wrk(base, read, headers, seconds, connections, work)
                else:
                    measured = run_builtin(base, read, headers, seconds, connections)
                measured.probe_status = probe_status
                results.append(measured)
                print(
                    f"  read {read.name}: {measured.per_s:,.0f} req/s, p99 {measured.p99_ms or 0:,.1f} ms", flush=True
                )
            memory = memory_mib(pid)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ceiling = results[0].per_s
    for measured in results[1:]:
        measured.ceiling_per_s = ceiling
    peak = memory.get("VmHWM", 0.0)
    return {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": psycopg.conninfo.conninfo_to_dict(libpq_url(database_url)).get("dbname"),
        "leads": leads,
        "events": events,
        "client": "wrk" if client == "wrk" else "built-in (asyncio, raw keep-alive HTTP/1.1 sockets)",
        "connections": connections,
        "seconds_per_read": seconds,
        "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
        "reads": [m.as_dict() for m in results],
        "api_rss_mib": {"at_start": memory_at_start.get("VmRSS"), "at_end": memory.get("VmRSS"), "peak": peak},
        "api_memory_bar": f"< {API_MEMORY_BAR_MIB} MiB",
        "api_memory_passed": peak < API_MEMORY_BAR_MIB,
        "passed": all(m.passed is not False for m in results) and peak < API_MEMORY_BAR_MIB,
    }


def report_reads(result: dict) -> str:
    header = f"{'read':<36} {'req/s':>8} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  bar"
    lines = [
        f"reads: {result['leads']:,} scored leads, {result['events']:,} events; {result['connections']} keep-alive "
        f"connections, {result['seconds_per_read']:g} s each, measured by {result['client']}",
        header,
        "-" * len(header),
    ]
    for read in result["reads"]:
        bar = f"p99 < {read['bar_ms']:g} ms  {verdict(read['passed'])}" if read["bar_ms"] is not None else ""
        lines.append(
            f"{read['name'][:36]:<36} {number(read['per_s']):>8} {number(read['ratio'], 2):>6} "
            f"{number(read['p50_ms'], 1):>8} {number(read['p99_ms'], 1):>8} {read['errors']:>7,}  {bar}"
        )
    lines.append("-" * len(header))
    rss = result["api_rss_mib"]
    lines.append(
        f"API process RSS: {number(rss['at_start'])} MiB at start, {number(rss['at_end'])} at end, "
        f"peak {number(rss['peak'])} MiB   bar {result['api_memory_bar']}  {verdict(result['api_memory_passed'])}"
    )
    held = [read for read in result["reads"] if read["passed"] is not None]
    lines.append(f"reads within their bar: {sum(read['passed'] for read in held)} of {len(held)}")
    load = result["load_average_1m"]
    lines.append(
        f"ratio = req/s over healthz's req/s in this run; 1-minute load {load['before']:.1f} before, "
        f"{load['after']:.1f} after ({os.cpu_count()} CPUs)"
    )
    return "\n".join(lines)
