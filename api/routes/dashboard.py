"""The web dashboard: `GET /` serves the page, `/static` its scripts and styles (vendored, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from api.auth import READ_GUARDS
from api.deps import SettingsDep

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["dashboard"])


class DashboardConfig(BaseModel):
    dagster_url: str


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    # no-cache: the page is tiny and a stale copy after an upgrade would load mismatched scripts.
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/api/config", response_model=DashboardConfig, dependencies=READ_GUARDS)
def config(settings: SettingsDep) -> dict:
    """What the dashboard needs to know about its surroundings: where the Dagster UI is."""
    return {"dagster_url": settings.dagster_base_url}


def mount_dashboard(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
