"""The scoring constants of SPEC section 4, as plain values the pure scoring code takes as arguments."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScoringParams:
    floor: int = 0
    cap: int = 1000
    inactivity_days: int = 30
    decay_points: int = 5


@dataclass(frozen=True)
class TierThresholds:
    warm: int = 50
    hot: int = 150
    qualified: int = 300


DEFAULT_RULES: dict[str, int] = {
    "EMAIL_OPEN": 10,
    "PAGE_VIEW": 5,
    "FORM_SUBMISSION": 20,
    "DEMO_REQUEST": 50,
    "PURCHASE": 100,
    "REFUND": -50,
}

# Leads are split into this many buckets by `hashtext(lead_key) & 15` in Postgres (migration 0001):
# the partitions of the scoring assets, so a replay can run buckets side by side.
LEAD_BUCKETS = 16


def bucket_groups(per_run: int) -> list[tuple[int, ...]]:
    """The buckets in ranges of `per_run` (the last may be shorter): what one replay run covers."""
    return [tuple(range(first, min(first + per_run, LEAD_BUCKETS))) for first in range(0, LEAD_BUCKETS, per_run)]
