"""Scoring rules: read them; change them with the admin token (each change is a new immutable rule version and makes
every score stale); read the versions and restore one; preview a draft set before saving it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy import Connection

from api import reads
from api.auth import READ_GUARDS, AdminDep
from api.deps import ConnDep, OffsetQuery
from api.errors import field_error
from api.previews import PreviewJobs
from api.schemas import ADMIN_ERRORS, READ_ERRORS, JsonInt, error_responses, no_coercion_to_int
from leadscore_pipeline.rules import (
    RULE_FIELDS,
    change_rules,
    remove_rule,
    replace_rule_set,
    upsert_rule,
)

router = APIRouter(prefix="/api/rules", tags=["rules"])

# An event type as the validator stores it, before its upper-casing: the path's documented pattern is the one checked.
EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
EventTypePath = Annotated[
    str,
    Path(description="an event type; upper-cased", json_schema_extra={"pattern": EVENT_TYPE_PATTERN}),
]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="a rule version number", examples=[2])]


def _storable(value: str | None) -> str | None:
    if value is not None:
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must not contain lone surrogates (U+D800-U+DFFF): they are no characters") from None
    return value


# Postgres text holds no NUL nor lone surrogates; a note is the user's words, kept as given.
Note = Annotated[
    Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$"), AfterValidator(_storable)] | None,
    Field(description="why: kept with the version", examples=["Q4 scoring review"]),
]
MaxPerDay = Annotated[
    Annotated[int, Field(ge=1, le=1_000_000), BeforeValidator(no_coercion_to_int)] | None,
    Field(
        description="points from at most this many events of the type per lead per UTC day (in event order); "
        "later ones score 0. Absent or null: no limit",
    ),
]


class RuleIn(BaseModel):
    # The documented JSON types, not what lax pydantic would coerce: `true` is not 1, nor 1 or "yes" a boolean.
    points: JsonInt = Field(..., ge=-1000, le=1000)
    active: bool = Field(True, strict=True)
    max_per_day: MaxPerDay = None
    note: Note = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"points": 5, "active": True, "max_per_day": 3, "note": "cap page views"}]}
    )


class RuleDefinition(BaseModel):
    """A rule as a set holds it."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(..., pattern=EVENT_TYPE_PATTERN, description="upper-cased")
    points: JsonInt = Field(..., ge=-1000, le=1000)
    active: bool = Field(True, strict=True)
    max_per_day: MaxPerDay = None


class RuleSetIn(BaseModel):
    """A whole rule set: what is not in it is no rule."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rules": [
                        {"event_type": "PAGE_VIEW", "points": 5, "active": True, "max_per_day": 3},
                        {"event_type": "DEMO_REQUEST", "points": 60, "active": True},
                        {"event_type": "REFUND", "points": -50, "active": True},
                    ],
                    "note": "demo requests count more; page views at most 3 a day",
                }
            ]
        },
    )

    rules: list[RuleDefinition] = Field(..., max_length=1000)
    note: Note = None

    @model_validator(mode="after")
    def _one_rule_per_type(self) -> RuleSetIn:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            rule.event_type = rule.event_type.upper()
            if rule.event_type in seen:
                raise field_error(422, f"rules.{index}.event_type", f"{rule.event_type} appears twice in the set")
            seen.add(rule.event_type)
        return self

    def as_rule_set(self) -> dict[str, dict[str, Any]]:
        return {rule.event_type: rule.model_dump(include=set(RULE_FIELDS)) for rule in self.rules}


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "back to before the test"}]})

    note: Note = None


class Rule(BaseModel):
    event_type: str
    points: int
    active: bool
    max_per_day: int | None
    updated_at: datetime


class Rules(BaseModel):
    rules_version: int = Field(description="bumped by every change of the rules or of a scoring setting")
    rule_set_version: int | None = Field(description="the rule version (GET /api/rules/versions) now current")
    rules: list[Rule]


class RuleChanged(BaseModel):
    rule: Rule | None
    rules_version: int
    changed: bool
    version: int | None = Field(description="the rule version this change made; null when nothing changed")


class RuleValues(BaseModel):
    points: int
    active: bool
    max_per_day: int | None


class RuleChange(BaseModel):
    event_type: str
    before: RuleValues | None = Field(description="null: the rule was added")
    after: RuleValues | None = Field(description="null: the rule was deleted")


class RuleVersionSummary(BaseModel):
    version: int
    created_at: datetime
    kind: Literal["seed", "put", "delete", "replace", "restore"]
    change: list[RuleChange]
    note: str | None
    restored_from: int | None
    rules_version: int = Field(description="the rules version (GET /api/pipeline/status) this set made current")


class RuleVersion(RuleVersionSummary):
    rules: list[RuleDefinition] = Field(description="the whole set as of this version")


class RuleVersions(BaseModel):
    total: int
    versions: list[RuleVersionSummary] = Field(description="newest first")


class RuleSetChanged(BaseModel):
    rules: list[Rule]
    rules_version: int
    changed: bool
    version: int | None = Field(description="the rule version this change made; null when nothing changed")


class PreviewStarted(BaseModel):
    id: str
    state: Literal["queued", "running", "succeeded", "failed"]


class PreviewLead(BaseModel):
    lead_key: str
    email: str | None
    name: str | None
    company: str | None
    score_before: int | None = Field(description="its stored score decayed to as_of; null: not scored yet")
    tier_before: str
    score_after: int
    tier_after: str
    change: int


class PreviewResult(BaseModel):
    as_of: datetime
    leads: int
    tier_changes: int = Field(description="leads whose tier would change")
    matrix: dict[str, dict[str, int]] = Field(
        description="leads by tier now (rows; `unscored`: landed, not scored yet) and under the draft (columns)"
    )
    tiers_before: dict[str, int]
    tiers_after: dict[str, int]
    top_movers_up: list[PreviewLead]
    top_movers_down: list[PreviewLead]
    top: list[PreviewLead] = Field(description="the top 25 under the draft")


class PreviewState(BaseModel):
    id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    buckets_done: int
    buckets_total: int
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    result: PreviewResult | None


def _event_type(raw: str) -> str:
    if not re.fullmatch(EVENT_TYPE_PATTERN, raw, re.ASCII):
        raise field_error(422, "event_type", f"must match {EVENT_TYPE_PATTERN}, got {raw!r}")
    return raw.upper()


def _previews(request: Request) -> PreviewJobs:
    return request.app.state.previews  # created in the app's lifespan


@router.get("", response_model=Rules, responses=READ_ERRORS, dependencies=READ_GUARDS)
def list_rules(conn: ConnDep) -> dict:
    return {
        "rules_version": reads.rules_version(conn),
        "rule_set_version": reads.rule_set_version(conn),
        "rules": reads.rules(conn),
    }


@router.put(
    "",
    response_model=RuleSetChanged,
    dependencies=[AdminDep],
    responses=ADMIN_ERRORS | error_responses(400, 413),
    summary="Replace the whole rule set",
)
def put_rule_set(body: RuleSetIn, conn: ConnDep) -> dict:
    version = change_rules(conn, "replace", lambda: replace_rule_set(conn, body.as_rule_set()), body.note)
    return _set_changed(conn, version)


@router.get("/versions", response_model=RuleVersions, responses=READ_ERRORS, dependencies=READ_GUARDS)
def list_versions(conn: ConnDep, limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: OffsetQuery = 0) -> dict:
    return reads.rule_versions(conn, limit, offset)


@router.get(
    "/versions/{version}",
    response_model=RuleVersion,
    responses=READ_ERRORS | error_responses(404),
    dependencies=READ_GUARDS,
)
def get_version(version: VersionPath, conn: ConnDep) -> dict:
    found = reads.rule_version(conn, version)
    if found is None:
        raise field_error(404, "version", f"no rule version {version}")
    return found


@router.post(
    "/versions/{version}/restore",
    response_model=RuleSetChanged,
    dependencies=[AdminDep],
    responses=ADMIN_ERRORS | error_responses(400, 404, 413),
    summary="Make an old rule set current again (a new version; every lead is rescored)",
)
def restore_version(version: VersionPath, conn: ConnDep, body: RestoreIn | None = None) -> dict:
    old = reads.rule_version(conn, version)  # a version never changes: read before the writers' lock
    if old is None:
        raise field_error(404, "version", f"no rule version {version}")
    rules = {rule["event_type"]: rule for rule in old["rules"]}
    note = body.note if body else None
    made = change_rules(conn, "restore", lambda: replace_rule_set(conn, rules), note, restored_from=version)
    return _set_changed(conn, made)


@router.post(
    "/preview",
    status_code=202,
    response_model=PreviewStarted,
    dependencies=[AdminDep],
    responses=ADMIN_ERRORS | error_responses(400, 409, 413),
    summary="Preview a draft rule set without saving it: poll GET /api/rules/preview/{id} for the answer",
)
def start_preview(body: RuleSetIn, request: Request) -> dict:
    return _previews(request).start([rule.model_dump() for rule in body.rules])


@router.get(
    "/preview/{preview_id}",
    response_model=PreviewState,
    dependencies=[AdminDep],
    responses=error_responses(401, 404, 503),
)
def get_preview(preview_id: Annotated[str, Path(max_length=64)], request: Request) -> dict:
    state = _previews(request).state(preview_id)
    if state is None:
        raise field_error(404, "id", f"no preview {preview_id!r} (previews are kept in memory for an hour)")
    return state


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
    stored_type = _event_type(event_type)
    rule = body.model_dump(include=set(RULE_FIELDS))
    version = change_rules(conn, "put", lambda: upsert_rule(conn, stored_type, rule), body.note)
    return {
        "rule": reads.rule(conn, stored_type),
        "rules_version": reads.rules_version(conn),
        "changed": version is not None,
        "version": None if version is None else version["version"],
    }


@router.delete(
    "/{event_type}", response_model=RuleChanged, dependencies=[AdminDep], responses=ADMIN_ERRORS | error_responses(404)
)
def delete_rule(
    event_type: EventTypePath,
    conn: ConnDep,
    note: Annotated[str | None, Query(max_length=500, description="why: kept with the version")] = None,
) -> dict:
    stored_type = _event_type(event_type)

    def delete() -> None:
        if not remove_rule(conn, stored_type):
            raise field_error(404, "event_type", f"no rule for {event_type!r}")

    version = change_rules(conn, "delete", delete, note)
    return {"rule": None, "rules_version": reads.rules_version(conn), "changed": True, "version": version["version"]}


def _set_changed(conn: Connection, version: dict | None) -> dict:
    return {
        "rules": reads.rules(conn),
        "rules_version": reads.rules_version(conn),
        "changed": version is not None,
        "version": None if version is None else version["version"],
    }
