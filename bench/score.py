"""Score everything landed in LEADSCORE_DATABASE_URL, as its own process, and print step timings and peak RSS as JSON."""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable

from leadscore_pipeline.db.engine import connect
from leadscore_pipeline.refresh import Scope, StepResult, decay_scores, dedup_deliveries, score_buckets
from leadscore_pipeline.refresh_analytics import count_daily_events, refresh_lead_stats
from leadscore_pipeline.settings import get_settings


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
    """The micro-batch that dedups the whole stream, then a full rebuild: every step of a replay."""
    settings = get_settings()
    params, tiers = settings.scoring, settings.tiers
    with connect() as conn:
        return [
            timed_step(
                "micro-batch dedup of the whole stream", lambda: dedup_deliveries(conn, Scope(incremental=True))
            ),
            timed_step("micro-batch daily counts", lambda: count_daily_events(conn, Scope(incremental=True))),
            timed_step("full run: dedup", lambda: dedup_deliveries(conn, Scope())),
            timed_step("full run: score", lambda: score_buckets(conn, Scope(), params)),
            timed_step("full run: decay", lambda: decay_scores(conn, Scope(), params, tiers)),
            timed_step("full run: daily counts", lambda: count_daily_events(conn, Scope())),
            timed_step("full run: lead type stats", lambda: refresh_lead_stats(conn, Scope())),
        ]


def main() -> None:
    steps = score_all()
    print(json.dumps({"steps": steps, "peak_rss_mib": peak_rss_mib()}))


if __name__ == "__main__":
    main()
