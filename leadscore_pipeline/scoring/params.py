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
