"""Measure a running stack (`make up`) end to end, as a user meets it, and check sampled leads exactly.

1. A generated CSV of `--events` rows is dropped into the drop folder; timed until every sampled lead reads its
   expected score through the API (landed, deduplicated, scored and served).
2. A replay through `POST /api/replay`, timed until it succeeds; the sampled leads are checked again.
3. `--batches` batches of 1,000 new events of sampled leads through `POST /api/events`, each timed from its
   `202` until its leads read their new expected scores.

The expected scores come from the file itself, not from the database: each sampled lead's first deliveries
(SPEC §3, by event id in file order), folded by the literal reference of SPEC §4 (tests/unit/test_fold.py).

    .venv/bin/python -m bench.stack --events 2000000 --leads 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import polars as pl

from bench.generate import write_stream
from leadscore_pipeline.scoring.params import DEFAULT_RULES
from leadscore_pipeline.settings import get_settings
from tests.unit.test_fold import EPOCH, reference_history

RULES = {event_type: (points, True) for event_type, points in DEFAULT_RULES.items()}
BATCH_EVENTS = 1_000


def lead_events(csv: pl.DataFrame) -> pl.DataFrame:
    """The file's events as the pipeline must see them: normalized (SPEC §2), the first delivery of each id."""
    return (
        csv.with_row_index("row")
        .with_columns(
            lead_key=pl.coalesce(pl.col("email").str.strip_chars().str.to_lowercase(), "id:" + pl.col("lead_id")),
            event_type=pl.col("event_type").str.strip_chars().str.to_uppercase(),
            event_time=pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC"),
        )
        .sort("row")
        .unique("event_id", keep="first", maintain_order=True)
        .select("lead_key", "event_id", "event_type", "event_time")
    )


@dataclass(frozen=True)
class Expected:
    score_at_last_event: int
    events: int
    last_event_at: datetime

    def matches(self, lead: dict | None) -> bool:
        """The lead as the API shows it: its fold, and its current score decayed to the API's `as_of` (SPEC §4)."""
        if lead is None:
            return False
        params = get_settings().scoring
        as_of = datetime.fromisoformat(lead["as_of"])
        steps = max(0, (as_of - EPOCH).days - ((self.last_event_at - EPOCH).days + params.inactivity_days))
        current = max(params.floor, self.score_at_last_event - params.decay_points * steps)
        shown = (
            lead["score_at_last_event"],
            lead["events"],
            datetime.fromisoformat(lead["last_event_at"]),
            lead["score"],
        )
        return shown == (self.score_at_last_event, self.events, self.last_event_at, current)


def expected_leads(events: pl.DataFrame, keys: list[str]) -> dict[str, Expected]:
    """Each sampled lead by the reference fold of its events."""
    sampled = events.filter(pl.col("lead_key").is_in(keys))
    history = reference_history(sampled.rows(), RULES, get_settings().scoring)
    last = history.group_by("lead_key").agg(pl.col("score_after").last(), pl.len(), pl.col("event_time").last())
    return {key: Expected(score, count, last_at) for key, score, count, last_at in last.iter_rows()}


def wrong_leads(api: httpx.Client, expected: dict[str, Expected]) -> list[str]:
    wrong = []
    for key, lead in expected.items():
        response = api.get(f"/api/leads/{quote(key, safe='@:')}")
        if not lead.matches(response.json() if response.status_code == 200 else None):
            wrong.append(key)
    return wrong


def wait_exact(api: httpx.Client, expected: dict[str, Expected], deadline_s: float) -> int:
    """Poll the sampled leads until every one reads as expected, for at most `deadline_s`; the misses left."""
    give_up = time.monotonic() + deadline_s
    while True:
        wrong = wrong_leads(api, expected)
        if not wrong or time.monotonic() > give_up:
            return len(wrong)
        expected = {key: expected[key] for key in wrong}  # those already right stay right: nothing else writes them
        time.sleep(0.05)


def drop_file(csv: Path, dropzone: Path) -> None:
    """Into the drop folder by a rename, so the sensor never sees half a file."""
    part = dropzone / (csv.name + ".part")
    part.write_bytes(csv.read_bytes())
    os.replace(part, dropzone / csv.name)


def replay(api: httpx.Client, token: str) -> None:
    replay_id = api.post("/api/replay", headers={"Authorization": f"Bearer {token}"}).json()["id"]
    while (state := api.get(f"/api/replay/{replay_id}").json()["state"]) not in ("succeeded", "failed"):
        time.sleep(0.1)
    if state != "succeeded":
        raise SystemExit(f"replay {replay_id} {state}")


def new_batch(csv: pl.DataFrame, keys: list[str], number: int) -> pl.DataFrame:
    """1,000 new events of sampled leads: copies of their rows under new ids."""
    rows = csv.filter(pl.coalesce(pl.col("email").str.to_lowercase(), "id:" + pl.col("lead_id")).is_in(keys)).sample(
        n=BATCH_EVENTS, with_replacement=True, seed=number
    )
    return rows.with_columns(event_id=pl.format("batch{}-{}", pl.lit(number), pl.int_range(pl.len())))


def post_batch(api: httpx.Client, batch: pl.DataFrame) -> float:
    events = [
        {
            "event_id": row["event_id"],
            "event_type": row["event_type"],
            "timestamp": row["timestamp"],
            **({"email": row["email"]} if row["email"] else {}),
            **({"lead_id": row["lead_id"]} if row["lead_id"] else {}),
        }
        for row in batch.iter_rows(named=True)
    ]
    response = api.post("/api/events/batch", json={"events": events})
    if response.status_code != 202:
        raise SystemExit(f"batch refused: {response.status_code} {response.text[:300]}")
    return time.monotonic()


def stage(started: float, events: int, wrong: int) -> dict[str, float]:
    seconds = time.monotonic() - started
    return {"seconds": round(seconds, 2), "events_per_s": round(events / seconds), "wrong_leads": wrong}


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=200, help="leads checked exactly after each stage")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--api", default=f"http://{settings.api_host}:{settings.api_port}")
    parser.add_argument("--deadline", type=float, default=1800.0, help="seconds a stage may take")
    args = parser.parse_args()
    token = settings.configured_admin_token()
    result: dict[str, object] = {"events": args.events, "leads": args.leads, "load_before": os.getloadavg()}

    with tempfile.TemporaryDirectory() as work, httpx.Client(base_url=args.api, timeout=60) as api:
        csv_path = Path(work) / f"stack-{args.events}.csv"
        write_stream(csv_path, args.events, args.leads)
        csv = pl.read_csv(csv_path, infer_schema=False)
        events = lead_events(csv)
        keys = events["lead_key"].unique().sample(n=args.sample, seed=11).sort().to_list()
        expected = expected_leads(events, keys)

        started = time.monotonic()
        drop_file(csv_path, settings.dropzone)
        wrong = wait_exact(api, expected, args.deadline)
        result["drop"] = stage(started, args.events, wrong)

        started = time.monotonic()
        replay(api, token)
        result["replay"] = stage(started, args.events, wait_exact(api, expected, 0))

        batches = []
        for number in range(args.batches):
            batch = new_batch(csv, keys, number)
            events = pl.concat([events, lead_events(batch)])
            expected = expected_leads(events, keys)
            started = post_batch(api, batch)
            batches.append(stage(started, BATCH_EVENTS, wait_exact(api, expected, 120)))
        result["batches"] = batches
        result["batch_median_s"] = statistics.median(b["seconds"] for b in batches) if batches else None
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    stages = [result["drop"], result["replay"], *result["batches"]]
    if any(stage["wrong_leads"] for stage in stages):
        raise SystemExit("some sampled leads never read their expected scores")


if __name__ == "__main__":
    main()
