"""Settings overridden for a block of a test: the environment variables set, the cached settings re-read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from leadscore_pipeline.settings import get_settings


@contextmanager
def settings_env(**variables: str) -> Iterator[None]:
    """`settings_env(LEADSCORE_BULK_THRESHOLD="3")`: usable where a fixture is not, inside a hypothesis example."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
