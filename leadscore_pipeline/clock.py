"""The product's one clock: receive times, decay "as of now" and "today" in analytics all read it, so tests
can fix it (tests/conftest.py) and no result depends on the day or hour a test runs."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
