"""Write a synthetic, deterministic event stream as a CSV batch: many leads, a year of history, redeliveries."""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

# The six default rule types plus one no rule scores (it still lands, dedups and counts as activity).
EVENT_TYPES = ("PAGE_VIEW", "EMAIL_OPEN", "FORM_SUBMISSION", "DEMO_REQUEST", "PURCHASE", "REFUND", "WEBINAR_JOINED")
EVENT_WEIGHTS = (0.42, 0.30, 0.10, 0.05, 0.03, 0.01, 0.09)

FIRST_NAMES = ("Ann", "Bob", "Chen", "Dana", "Eve", "Farid", "Gita", "Hugo", "Ines", "Jon", "Kemal", "Lea")
LAST_NAMES = ("Smith", "Garcia", "Okafor", "Nguyen", "Muller", "Rossi", "Kowalski", "Tanaka", "Silva", "Haddad")
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne")

REDELIVERY_SHARE = 0.02
CHANGED_REDELIVERY_SHARE = 0.3  # of the redeliveries: the sender corrected the company
LEADS_WITHOUT_EMAIL = 0.1  # known by CRM id only
RECENT_LEADS = 0.7  # active within the 30-day inactivity window; the rest decay
HISTORY_DAYS = 365
INACTIVITY_DAYS = 30
US_PER_HOUR = 3_600_000_000


class Draws:
    """Reproducible random columns without numpy: each draw hashes the row index with its own seed."""

    def __init__(self, seed: int):
        self.seed = seed
        self.draws = 0

    def uniform(self, size: int) -> pl.Series:
        """Floats in [0, 1)."""
        self.draws += 1
        hashed = pl.select(pl.int_range(size, dtype=pl.UInt64).hash(seed=self.seed * 1_000 + self.draws)).to_series()
        return (hashed // (1 << 11)).cast(pl.Float64) / float(1 << 53)

    def chance(self, size: int, probability: float) -> pl.Series:
        return self.uniform(size) < probability

    def exponential(self, size: int, mean: float) -> pl.Series:
        return -mean * (1.0 - self.uniform(size)).log()

    def lognormal(self, size: int, sigma: float) -> pl.Series:
        # Box-Muller: two uniforms make one standard normal.
        radius = (-2.0 * (1.0 - self.uniform(size)).log()).sqrt()
        return (sigma * radius * (2 * math.pi * self.uniform(size)).cos()).exp()

    def choice(self, size: int, weights: pl.Series) -> pl.Series:
        """Indices into `weights`, drawn in proportion to them."""
        cumulative = weights.cast(pl.Float64).cum_sum()
        return cumulative.search_sorted(self.uniform(size) * cumulative[-1], side="right").clip(0, len(weights) - 1)

    def pick(self, values: tuple[str, ...], size: int) -> pl.Series:
        return pl.Series(values).gather(self.choice(size, pl.Series([1.0] * len(values))))


def _leads(draws: Draws, count: int) -> pl.DataFrame:
    """One row per lead: identity, profile, activity weight and active window (days before the anchor)."""
    last_active = (
        pl.DataFrame({"recent": draws.chance(count, RECENT_LEADS), "u": draws.uniform(count)})
        .select(
            pl.when("recent")
            .then(pl.col("u") * INACTIVITY_DAYS)
            .otherwise(INACTIVITY_DAYS + pl.col("u") * (HISTORY_DAYS - 35 - INACTIVITY_DAYS))
        )
        .to_series()
    )
    frame = pl.DataFrame(
        {
            "lead": pl.int_range(count, eager=True),
            "first": draws.pick(FIRST_NAMES, count),
            "last": draws.pick(LAST_NAMES, count),
            "company": draws.pick(COMPANIES, count),
            "has_email": ~draws.chance(count, LEADS_WITHOUT_EMAIL),
            "has_crm_id": draws.chance(count, 0.5),
            # A heavy tail: most leads have a handful of events, a few have hundreds.
            "weight": draws.lognormal(count, 1.0),
            "last_active": last_active,
            "span": draws.uniform(count) * (HISTORY_DAYS - last_active),
        }
    )
    return frame.with_columns(
        name=pl.format("{} {}", "first", "last"),
        email=pl.when("has_email").then(
            pl.format("{}.{}.{}@{}.example", "first", "last", "lead", pl.col("company").str.to_lowercase())
        ),
        lead_id=pl.when(~pl.col("has_email") | pl.col("has_crm_id")).then(
            pl.format("crm-{}", pl.col("lead").cast(pl.String).str.zfill(7))
        ),
    ).drop("first", "last", "has_email", "has_crm_id")


def _originals(draws: Draws, leads: pl.DataFrame, count: int, anchor: datetime) -> pl.DataFrame:
    """First deliveries: lead, type, time inside the lead's window, and an arrival time after it."""
    late = draws.chance(count, 0.03)
    # Most events arrive within minutes; a few come days late, so the file is not in time order.
    delay_hours = pl.select(
        pl.when(late).then(draws.exponential(count, 48.0)).otherwise(draws.exponential(count, 0.3))
    ).to_series()
    events = pl.DataFrame(
        {
            "lead": draws.choice(count, leads["weight"]).cast(pl.Int64),
            "event_number": pl.int_range(count, eager=True).shuffle(seed=draws.seed),
            "event_type": pl.Series(EVENT_TYPES).gather(draws.choice(count, pl.Series(EVENT_WEIGHTS))),
            "position": draws.uniform(count),
            "delay_us": (delay_hours * US_PER_HOUR).cast(pl.Int64),
            "lowercase_type": draws.chance(count, 0.02),
            "uppercase_email": draws.chance(count, 0.03),
            "bare_metadata": draws.chance(count, 0.1),
        }
    ).join(leads, on="lead", how="left")
    days_ago = pl.col("last_active") + pl.col("position") * pl.col("span")
    event_time = pl.lit(anchor) - pl.duration(microseconds=(days_ago * 86_400e6).cast(pl.Int64))
    return events.with_columns(
        event_id=pl.format("evt-{}", pl.col("event_number").cast(pl.String).str.zfill(9)),
        event_time=event_time.dt.truncate("1ms"),
    ).with_columns(arrival=pl.col("event_time") + pl.duration(microseconds="delay_us"))


def _redeliveries(draws: Draws, originals: pl.DataFrame, count: int) -> pl.DataFrame:
    """Later copies of earlier events; some with a corrected company (a conflict for dedup to count)."""
    later_us = ((draws.exponential(count, 24.0) + 1 / 60) * US_PER_HOUR).cast(pl.Int64)
    changed = draws.chance(count, CHANGED_REDELIVERY_SHARE)
    return originals.sample(n=count, seed=draws.seed).with_columns(
        arrival=pl.col("arrival") + pl.duration(microseconds=later_us),
        company=pl.when(changed).then(pl.col("company") + " Inc").otherwise("company"),
        bare_metadata=pl.col("bare_metadata") & ~changed,
    )


def _as_csv_rows(events: pl.DataFrame) -> pl.DataFrame:
    """The columns of a CSV batch, in arrival order, as text the way senders write it."""
    metadata = pl.struct("name", "company").struct.json_encode()
    return events.sort("arrival", "event_id").select(
        "event_id",
        event_type=pl.when("lowercase_type").then(pl.col("event_type").str.to_lowercase()).otherwise("event_type"),
        lead_id="lead_id",
        email=pl.when("uppercase_email").then(pl.col("email").str.to_uppercase()).otherwise("email"),
        timestamp=pl.col("event_time").dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ"),
        metadata=pl.when("bare_metadata").then(pl.lit("{}")).otherwise(metadata),
    )


def generate_stream(events: int, leads: int, *, seed: int = 42, anchor: datetime | None = None) -> pl.DataFrame:
    """`events` CSV rows (about 2% of them redeliveries) over `leads` leads, all before `anchor` (default now)."""
    anchor = anchor or datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    draws = Draws(seed)
    redelivered = round(events * REDELIVERY_SHARE)
    originals = _originals(draws, _leads(draws, leads), events - redelivered, anchor)
    return _as_csv_rows(pl.concat([originals, _redeliveries(draws, originals, redelivered)]))


def write_stream(path: Path, events: int, leads: int, *, seed: int = 42) -> int:
    stream = generate_stream(events, leads, seed=seed)
    stream.write_csv(path)
    return stream.height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = write_stream(args.path, args.events, args.leads, seed=args.seed)
    print(f"wrote {rows:,} rows to {args.path} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
