"""Score what is landed in LEADSCORE_DATABASE_URL as a process of its own, as a Dagster run would, and print step
timings and peak RSS as JSON: `microbatch` (everything new as one micro-batch), `replay 0,1,2,3` (those buckets
rebuilt from the deliveries, as one run of a replay does) or `catch-up 0,1,2,3 --through N` (one run of the bulk path
that a backlog past LEADSCORE_BULK_THRESHOLD takes)."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from bench.read import memory_mib
from leadscore_pipeline.db.engine import connect
from leadscore_pipeline.microbatch import pipeline_steps
from leadscore_pipeline.refresh import Scope, StepResult


def peak_rss_mib() -> float:
    """This process's own high-water mark (VmHWM). Not ru_maxrss: Linux carries that over from the parent through
    fork and exec, so a child of the bench (which read the whole CSV) would report the bench's peak."""
    return memory_mib(os.getpid())["VmHWM"]


def timed_step(name: str, step: Callable[[], StepResult]) -> dict[str, object]:
    started = time.perf_counter()
    result = step()
    return {
        "name": name,
        "seconds": time.perf_counter() - started,
        "rows": result.rows,
        "details": result.details,
        "peak_rss_mib_after": peak_rss_mib(),
    }


def score(scope: Scope) -> list[dict[str, object]]:
    with connect() as conn:
        return [timed_step(name, step) for name, step in pipeline_steps(conn, scope)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("microbatch", "replay", "catch-up"))
    parser.add_argument("buckets", nargs="?", default="", help="replay, catch-up: the buckets, comma-separated")
    parser.add_argument("--through", type=int, help="catch-up: its fence (pipeline_state.bulk_through)")
    args = parser.parse_args()
    if args.mode == "microbatch":
        scope = Scope(incremental=True)
    else:
        buckets = tuple(int(bucket) for bucket in args.buckets.split(","))
        scope = Scope(buckets=buckets, through_seq=args.through if args.mode == "catch-up" else None)
    steps = score(scope)
    print(json.dumps({"steps": steps, "peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main()
