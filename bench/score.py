"""Score everything landed in LEADSCORE_DATABASE_URL, as its own process, and print step timings and peak RSS as JSON."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable

from leadscore_pipeline.db.engine import connect
from leadscore_pipeline.microbatch import pipeline_steps
from leadscore_pipeline.refresh import Scope, StepResult


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux: the high-water mark of this process alone.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_step(name: str, step: Callable[[], StepResult]) -> dict[str, object]:
    started = time.perf_counter()
    result = step()
    return {
        "name": name,
        "seconds": time.perf_counter() - started,
        "rows": result.rows,
        "details": result.details,
        "checks": result.checks,
        "peak_rss_mib_after": peak_rss_mib(),
    }


def score_all() -> list[dict[str, object]]:
    """The whole stream as one micro-batch (every row written for the first time), then a replay of it
    (which recomputes everything and writes only what differs)."""
    with connect() as conn:
        return [
            timed_step(f"{label}: {name}", step)
            for label, scope in (("micro-batch", Scope(incremental=True)), ("replay", Scope()))
            for name, step in pipeline_steps(conn, scope)
        ]


def main() -> None:
    steps = score_all()
    print(json.dumps({"steps": steps, "peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main()
