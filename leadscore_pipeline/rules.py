"""The rules version and the rule set's history: every change of the set is an immutable version (its time, what
changed, a note) and bumps the rules version, so scores go stale and are rescored."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text

from leadscore_pipeline.settings import Settings

# What a rule is, besides its event type: the columns of `rules` a version keeps.
RULE_FIELDS = ("points", "active", "max_per_day")
VERSION_COLUMNS = "version, created_at, kind, change, note, restored_from, rules_version"

RuleSet = dict[str, dict[str, Any]]  # event_type -> {"points", "active", "max_per_day"}


def bump_rules_version(conn: Connection) -> int:
    return conn.execute(
        text("update pipeline_state set rules_version = rules_version + 1 returning rules_version")
    ).scalar_one()


def lock_rules(conn: Connection) -> None:
    """Rule writers one at a time (the mode conflicts with itself), so each version's `before` is what the change
    found; readers of the rules (the scoring steps, the API) are not held."""
    conn.execute(text("lock table rules in share row exclusive mode"))


def rule_set(conn: Connection) -> RuleSet:
    rows = conn.execute(text(f"select event_type, {', '.join(RULE_FIELDS)} from rules order by event_type"))
    return {row.event_type: {field: getattr(row, field) for field in RULE_FIELDS} for row in rows}


def rule_set_changes(before: RuleSet, after: RuleSet) -> list[dict[str, Any]]:
    """Each rule that differs, by event type: {"event_type", "before", "after"} (null where it is absent)."""
    return [
        {"event_type": event_type, "before": before.get(event_type), "after": after.get(event_type)}
        for event_type in sorted(before.keys() | after.keys())
        if before.get(event_type) != after.get(event_type)
    ]


def upsert_rule(conn: Connection, event_type: str, rule: dict[str, Any]) -> None:
    """Set one rule; one whose values do not change keeps its updated_at."""
    conn.execute(
        text(
            """insert into rules (event_type, points, active, max_per_day)
               values (:event_type, :points, :active, :max_per_day)
               on conflict (event_type) do update
                   set points = excluded.points, active = excluded.active, max_per_day = excluded.max_per_day,
                       updated_at = now()
                   where (rules.points, rules.active, rules.max_per_day)
                       is distinct from (excluded.points, excluded.active, excluded.max_per_day)"""
        ),
        {"event_type": event_type, **{field: rule[field] for field in RULE_FIELDS}},
    )


def remove_rule(conn: Connection, event_type: str) -> bool:
    """Delete one rule; False when there was none."""
    return conn.execute(text("delete from rules where event_type = :t"), {"t": event_type}).rowcount > 0


def change_rules(
    conn: Connection,
    kind: str,
    change: Callable[[], None],
    note: str | None = None,
    restored_from: int | None = None,
) -> dict[str, Any] | None:
    """Make a change of the rule set (`change()`, which may raise to refuse it) as its own version: one writer at
    a time, the set before it kept with it. None when the set is what it was."""
    lock_rules(conn)
    before = rule_set(conn)
    change()
    return record_rule_version(conn, kind, before, note, restored_from)


def replace_rule_set(conn: Connection, rules: RuleSet) -> None:
    """Make `rules` the whole set."""
    conn.execute(text("delete from rules where not (event_type = any(:types))"), {"types": sorted(rules)})
    for event_type, rule in sorted(rules.items()):
        upsert_rule(conn, event_type, rule)


def record_rule_version(
    conn: Connection, kind: str, before: RuleSet, note: str | None = None, restored_from: int | None = None
) -> dict[str, Any] | None:
    """After a change of the set (under lock_rules): the new version, with the rules version bumped so every
    score is rescored; None when the set is what it was (nothing is stale, no version)."""
    after = rule_set(conn)
    change = rule_set_changes(before, after)
    if not change and kind != "seed":
        return None
    rules_version = (
        conn.execute(text("select rules_version from pipeline_state")).scalar_one()
        if kind == "seed"
        else bump_rules_version(conn)
    )
    rules = [{"event_type": event_type, **rule} for event_type, rule in after.items()]
    row = conn.execute(
        text(
            f"""insert into rule_versions (version, kind, change, note, restored_from, rules, rules_version)
                select coalesce(max(version), 0) + 1, :kind, cast(:change as jsonb), :note, :restored_from,
                       cast(:rules as jsonb), :rules_version
                from rule_versions
                returning {VERSION_COLUMNS}, rules"""
        ),
        {
            "kind": kind,
            "change": json.dumps(change),
            "note": note,
            "restored_from": restored_from,
            "rules": json.dumps(rules),
            "rules_version": rules_version,
        },
    )
    return dict(row.mappings().one())


def seed_first_version(conn: Connection) -> None:
    """Version 1 is the set as first seeded, when no version is recorded yet (under lock_rules or stronger)."""
    if conn.execute(text("select not exists (select 1 from rule_versions)")).scalar_one():
        record_rule_version(conn, "seed", {})


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
