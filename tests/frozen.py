"""The fixed "now" of in-process tests (tests/conftest.py freezes the product's clock at it)."""

from datetime import UTC, datetime

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
