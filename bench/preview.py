"""Time a rules preview and the as_of reads against a database a `--keep` bench run left scored (measured, never
asserted): `python -m bench.preview postgresql://.../leadscore_bench_... [--runs 3]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import psycopg

from api import reads
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.preview import draft_rules_frame, preview_rules
from leadscore_pipeline.scoring.fold import utc_day_of
from leadscore_pipeline.settings import get_settings

# The defaults with demo requests worth more and page views limited: every type's rule changes or stays.
DRAFT = [
    {"event_type": "EMAIL_OPEN", "points": 10, "active": True, "max_per_day": None},
    {"event_type": "PAGE_VIEW", "points": 5, "active": True, "max_per_day": 2},
    {"event_type": "FORM_SUBMISSION", "points": 20, "active": True, "max_per_day": None},
    {"event_type": "DEMO_REQUEST", "points": 80, "active": True, "max_per_day": None},
    {"event_type": "PURCHASE", "points": 100, "active": True, "max_per_day": None},
    {"event_type": "REFUND", "points": -50, "active": True, "max_per_day": None},
]


# One rule changed, as an edit in the dashboard makes: only the leads with a demo request are folded again.
DRAFTS = {
    "demo requests 80, page views at most 2 a day": DRAFT,
    "demo requests 80": [{**rule, "max_per_day": None} for rule in DRAFT],
}


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def time_preview(url: str) -> None:
    settings = get_settings()
    for name, draft in DRAFTS.items():
        started, before = time.perf_counter(), load()
        result = preview_rules(
            libpq_url(url), draft_rules_frame(draft), datetime.now(UTC), settings.scoring, settings.tiers
        )
        seconds = time.perf_counter() - started
        print(
            f"preview ({name}): {seconds:.1f} s over {result['leads']:,} leads (load {before} before, {load()} after)"
        )


async def time_as_of(url: str) -> None:
    settings = get_settings()
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        (latest,) = await (await conn.execute("select max(event_time) from score_history")).fetchone()
        for back in (0, 30, 90):
            moment = latest - timedelta(days=back)
            started, before = time.perf_counter(), load()
            await reads.leaderboard_as_of(conn, 10, moment, utc_day_of(moment), settings.scoring)
            seconds = time.perf_counter() - started
            print(f"leaderboard as_of latest-{back}d: {seconds:.2f} s (load {before} before, {load()} after)")
        keys = [k for (k,) in await (await conn.execute("select lead_key from lead_scores limit 200")).fetchall()]
        started = time.perf_counter()
        for key in keys:
            await reads.lead_as_of(conn, key, latest - timedelta(days=30))
        print(f"lead as_of: {(time.perf_counter() - started) / len(keys) * 1000:.2f} ms a lead over {len(keys)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-preview", action="store_true")
    args = parser.parse_args()
    os.environ["LEADSCORE_DATABASE_URL"] = args.url
    get_settings.cache_clear()
    for _ in range(args.runs):
        if not args.skip_preview:
            time_preview(args.url)
        asyncio.run(time_as_of(args.url))


if __name__ == "__main__":
    main()
