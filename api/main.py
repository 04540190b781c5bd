"""The FastAPI app: ingestion, scores, pipeline status. OpenAPI docs at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import (
    analytics,
    dashboard,
    events,
    exports,
    health,
    ingest,
    leads,
    pipeline,
    receipts,
    replay,
    rules,
    stream,
    webhook,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    for service in ("score_stream", "group_commit"):
        if getattr(app.state, service, None) is not None:
            await getattr(app.state, service).close()


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=lifespan,
        title="LeadScore",
        description="Which leads are hot right now: events in, explained scores out.",
        version="0.1.0",
    )
    install_error_handlers(app)
    modules = (health, events, webhook, receipts, ingest, rules, leads, pipeline, replay, exports, analytics, stream)
    for module in modules:
        app.include_router(module.router)
    dashboard.mount_dashboard(app)
    return app


app = create_app()
