"""The FastAPI app: ingestion, scores, pipeline status. OpenAPI docs at /docs."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routes import events, exports, health, ingest, leads, pipeline, receipts, replay, rules, webhook


def create_app() -> FastAPI:
    app = FastAPI(
        title="LeadScore",
        description="Which leads are hot right now: events in, explained scores out.",
        version="0.1.0",
    )
    install_error_handlers(app)
    for module in (health, events, webhook, receipts, ingest, rules, leads, pipeline, replay, exports):
        app.include_router(module.router)
    return app


app = create_app()
