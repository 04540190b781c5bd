"""Waiting in tests: poll with a deadline (never sleep and hope), and free ports for servers the tests start."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    predicate: Callable[[], T],
    what: str,
    timeout: float = 180.0,
    interval: float = 0.1,
    ignoring: tuple[type[BaseException], ...] = (httpx.HTTPError,),
) -> T:
    """Poll until `predicate` returns something truthy; fail with the last answer at the deadline. A server not
    answering yet (`ignoring`) counts as a falsy answer."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except ignoring as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")
