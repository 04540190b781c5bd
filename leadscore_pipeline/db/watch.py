"""Watch the database under `leadscore up`: restart the embedded server when it died; for a server of its own
(LEADSCORE_DATABASE_URL) we manage nothing, so only say when it cannot be reached and when it is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from leadscore_pipeline.db.embedded import embedded_running, restart_embedded
from leadscore_pipeline.db.urls import libpq_url


class DatabaseWatch:
    def __init__(
        self, url: str, embedded_dir: Path | None, *, interval: float = 3.0, say: Callable[[str], None] = print
    ):
        self.url = url
        self.embedded_dir = embedded_dir
        self.interval = interval
        self.say = say
        self.next_look = time.monotonic() + interval
        self.reachable = True

    def check(self) -> bool:
        """Look, at most once per interval; True when the embedded server was restarted just now."""
        now = time.monotonic()
        if now < self.next_look:
            return False
        self.next_look = now + self.interval
        if self.embedded_dir is not None:
            return self._keep_embedded_running()
        self._report_reachability()
        return False

    def _keep_embedded_running(self) -> bool:
        if embedded_running(self.embedded_dir):
            return False
        self.say(f"the embedded PostgreSQL ({self.embedded_dir}) is not running; starting it again")
        try:
            restart_embedded(self.embedded_dir)
        except Exception as exc:  # e.g. its old backends still hold the shared memory: try again next look
            self.say(f"could not start the embedded PostgreSQL yet ({exc}); trying again in {self.interval:.0f} s")
            return False
        self.say("the embedded PostgreSQL is running again")
        return True

    def _report_reachability(self) -> None:
        reachable = database_reachable(self.url)
        if reachable != self.reachable:
            state = "reachable again" if reachable else "unreachable (LEADSCORE_DATABASE_URL: not managed by us)"
            self.say(f"the database is {state}")
        self.reachable = reachable


def database_reachable(url: str, timeout: int = 3) -> bool:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=timeout) as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False
