"""Scoring rules: read them; change them with the admin token (each change makes every score stale)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import text

from api import reads
from api.auth import READ_GUARDS, AdminDep
from api.deps import ConnDep
from api.errors import field_error
from api.schemas import ADMIN_ERRORS, READ_ERRORS, JsonInt, error_responses
from leadscore_pipeline.rules import bump_rules_version

router = APIRouter(prefix="/api/rules", tags=["rules"])

# An event type as the validator stores it, before its upper-casing: the path's documented pattern is the one checked.
EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
EventTypePath = Annotated[
    str,
    Path(description="an event type; upper-cased", json_schema_extra={"pattern": EVENT_TYPE_PATTERN}),
]


class RuleIn(BaseModel):
    # The documented JSON types, not what lax pydantic would coerce: `true` is not 1, nor 1 or "yes" a boolean.
    points: JsonInt = Field(..., ge=-1000, le=1000)
    active: bool = Field(True, strict=True)


class Rule(RuleIn):
    event_type: str
    updated_at: datetime


class Rules(BaseModel):
    rules_version: int
    rules: list[Rule]


class RuleChanged(BaseModel):
    rule: Rule | None
    rules_version: int
    changed: bool


def _event_type(raw: str) -> str:
    if not re.fullmatch(EVENT_TYPE_PATTERN, raw, re.ASCII):
        raise field_error(422, "event_type", f"must match {EVENT_TYPE_PATTERN}, got {raw!r}")
    return raw.upper()


@router.get("", response_model=Rules, responses=READ_ERRORS, dependencies=READ_GUARDS)
def list_rules(conn: ConnDep) -> dict:
    return {"rules_version": reads.rules_version(conn), "rules": reads.rules(conn)}


@router.get(
    "/{event_type}", response_model=Rule, responses=READ_ERRORS | error_responses(404), dependencies=READ_GUARDS
)
def get_rule(event_type: EventTypePath, conn: ConnDep) -> dict:
    rule = reads.rule(conn, _event_type(event_type))
    if rule is None:
        raise field_error(404, "event_type", f"no rule for {event_type!r}")
    return rule


@router.put(
    "/{event_type}",
    response_model=RuleChanged,
    dependencies=[AdminDep],
    responses=ADMIN_ERRORS | error_responses(400, 413),
)
def put_rule(event_type: EventTypePath, body: RuleIn, conn: ConnDep) -> dict:
    rule = (
        conn.execute(
            text(
                """insert into rules (event_type, points, active) values (:t, :points, :active)
                   on conflict (event_type) do update
                       set points = excluded.points, active = excluded.active, updated_at = now()
                       where (rules.points, rules.active) is distinct from (excluded.points, excluded.active)
                   returning event_type, points, active, updated_at"""
            ),
            {"t": _event_type(event_type), "points": body.points, "active": body.active},
        )
        .mappings()
        .first()
    )
    if rule is None:  # same values as before: nothing is stale
        return {"rule": get_rule(event_type, conn), "rules_version": reads.rules_version(conn), "changed": False}
    return {"rule": rule, "rules_version": bump_rules_version(conn), "changed": True}


@router.delete(
    "/{event_type}", response_model=RuleChanged, dependencies=[AdminDep], responses=ADMIN_ERRORS | error_responses(404)
)
def delete_rule(event_type: EventTypePath, conn: ConnDep) -> dict:
    deleted = conn.execute(text("delete from rules where event_type = :t"), {"t": _event_type(event_type)}).rowcount
    if not deleted:
        raise field_error(404, "event_type", f"no rule for {event_type!r}")
    return {"rule": None, "rules_version": bump_rules_version(conn), "changed": True}
