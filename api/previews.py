"""Rule previews run beside the API, one at a time, on a thread of their own with a connection of their own: a
preview of a big account takes longer than a person waits on one request (see the README), so it is polled.
Kept in memory for an hour; nothing is written to the database."""

from __future__ import annotations

import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.errors import field_error
from leadscore_pipeline import clock
from leadscore_pipeline.db.urls import libpq_url
from leadscore_pipeline.preview import draft_rules_frame, preview_rules
from leadscore_pipeline.settings import get_settings

KEPT_SECONDS = 3600


@dataclass
class _Preview:
    id: str
    started_at: datetime
    created: float = field(default_factory=time.monotonic)
    state: str = "queued"
    buckets_done: int = 0
    buckets_total: int = 0
    finished_at: datetime | None = None
    error: str | None = None
    result: dict[str, Any] | None = None


class PreviewJobs:
    def __init__(self, database_url: str):
        self._url = libpq_url(database_url)
        self._jobs: dict[str, _Preview] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        # One at a time: a preview holds a chunk of buckets in memory, as a rebuild step does.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rules-preview")

    def start(self, rules: list[dict[str, Any]]) -> dict[str, str]:
        with self._lock:
            self._forget_old()
            if any(job.state in ("queued", "running") for job in self._jobs.values()):
                raise field_error(409, "preview", "a preview is under way; poll it, then start the next")
            job = _Preview(id=secrets.token_urlsafe(12), started_at=clock.utc_now())
            self._jobs[job.id] = job
        self._executor.submit(self._run, job, rules)
        return {"id": job.id, "state": job.state}

    def state(self, preview_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(preview_id)
            return None if job is None else {name: getattr(job, name) for name in _Preview.__annotations__}

    def close(self) -> None:
        # A preview under way stops at its next chunk, so shutting down waits for a chunk at most.
        self._closing.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - KEPT_SECONDS
        for old in [key for key, job in self._jobs.items() if job.created < cutoff and job.finished_at]:
            del self._jobs[old]

    def _run(self, job: _Preview, rules: list[dict[str, Any]]) -> None:
        settings = get_settings()

        def progress(done: int, total: int) -> None:
            if self._closing.is_set():
                raise RuntimeError("the API is shutting down")
            with self._lock:
                job.state, job.buckets_done, job.buckets_total = "running", done, total

        try:
            result = preview_rules(
                self._url, draft_rules_frame(rules), job.started_at, settings.scoring, settings.tiers, progress
            )
            with self._lock:
                job.state, job.result = "succeeded", result
        except Exception as exc:  # the poller learns why; the API goes on
            with self._lock:
                job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                job.finished_at = clock.utc_now()
