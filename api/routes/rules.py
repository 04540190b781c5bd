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
from leadscore_pipeline.rules import bump_rules_version

router = APIRouter(prefix="/api/rules", tags=["rules"])

EVENT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")


class RuleIn(BaseModel):
    points: int = Field(..., ge=-1000, le=1000)
    active: bool = True


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
    event_type = raw.strip().upper()
    if not EVENT_TYPE.match(event_type):
        raise field_error(422, "event_type", f"must match ^[A-Z][A-Z0-9_]{{0,63}}$ after upper-casing, got {raw!r}")
    return event_type


@router.get("", response_model=Rules, dependencies=READ_GUARDS)
def list_rules(conn: ConnDep) -> dict:
    return {"rules_version": reads.rules_version(conn), "rules": reads.rules(conn)}


@router.get("/{event_type}", response_model=Rule, dependencies=READ_GUARDS)
def get_rule(event_type: str, conn: ConnDep) -> dict:
    rule = reads.rule(conn, _event_type(event_type))
    if rule is None:
        raise field_error(404, "event_type", f"no rule for {event_type!r}")
    return rule


@router.put("/{event_type}", response_model=RuleChanged, dependencies=[AdminDep])
def put_rule(event_type: Annotated[str, Path()], body: RuleIn, conn: ConnDep) -> dict:
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


@router.delete("/{event_type}", response_model=RuleChanged, dependencies=[AdminDep])
def delete_rule(event_type: str, conn: ConnDep) -> dict:
    deleted = conn.execute(text("delete from rules where event_type = :t"), {"t": _event_type(event_type)}).rowcount
    if not deleted:
        raise field_error(404, "event_type", f"no rule for {event_type!r}")
    return {"rule": None, "rules_version": bump_rules_version(conn), "changed": True}
