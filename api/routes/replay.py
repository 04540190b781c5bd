"""Replay: a full rescore from the raw events, run by Dagster as a backfill of the scoring assets."""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import READ_GUARDS, AdminDep
from api.deps import SettingsDep
from api.errors import field_error
from api.schemas import ADMIN_ERRORS, READ_ERRORS, error_responses
from leadscore_pipeline.replay import ReplayError, ReplayNotFound, launch_replay, replay_progress

router = APIRouter(prefix="/api/replay", tags=["replay"])


class ReplayLaunched(BaseModel):
    id: str


class ReplayState(BaseModel):
    id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    buckets_done: int = Field(ge=0, description="lead buckets (partitions) of the replay that a successful run rebuilt")
    buckets_total: int = Field(ge=0, description="lead buckets (partitions) the replay targets")


@router.post("", status_code=202, response_model=ReplayLaunched, dependencies=[AdminDep], responses=ADMIN_ERRORS)
async def start_replay(settings: SettingsDep) -> dict:
    try:
        return {"id": await run_in_threadpool(launch_replay, settings.dagster_base_url, "api")}
    except ReplayError as exc:
        raise field_error(503, "dagster", str(exc)) from None


@router.get(
    "/{replay_id}", response_model=ReplayState, responses=READ_ERRORS | error_responses(404), dependencies=READ_GUARDS
)
async def get_replay(replay_id: str, settings: SettingsDep) -> dict:
    try:
        progress = await run_in_threadpool(replay_progress, settings.dagster_base_url, replay_id)
    except ReplayNotFound as exc:
        raise field_error(404, "id", str(exc)) from None
    except ReplayError as exc:
        raise field_error(503, "dagster", str(exc)) from None
    return {"id": replay_id, **asdict(progress)}
