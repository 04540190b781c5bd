"""The rules version: bumped by every rule change and by changed scoring settings, so scores go stale."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import Connection, text

from leadscore_pipeline.settings import Settings


def bump_rules_version(conn: Connection) -> int:
    return conn.execute(
        text("update pipeline_state set rules_version = rules_version + 1 returning rules_version")
    ).scalar_one()


def scoring_fingerprint(settings: Settings) -> str:
    knobs = {
        "floor": settings.score_floor,
        "cap": settings.score_cap,
        "inactivity_days": settings.inactivity_days,
        "decay_points": settings.decay_points,
        "tiers": [settings.tier_warm, settings.tier_hot, settings.tier_qualified],
    }
    return hashlib.sha256(json.dumps(knobs, sort_keys=True).encode()).hexdigest()[:16]


def note_scoring_settings(conn: Connection, settings: Settings) -> bool:
    """Record the scoring settings; when they differ from last start, bump the rules version (rescore all)."""
    fingerprint = scoring_fingerprint(settings)
    previous = conn.execute(text("select scoring_fingerprint from pipeline_state for update")).scalar_one()
    if previous == fingerprint:
        return False
    conn.execute(text("update pipeline_state set scoring_fingerprint = :f"), {"f": fingerprint})
    if previous is None:
        return False
    bump_rules_version(conn)
    return True
