"""A database of its own (LEADSCORE_DATABASE_URL) is only watched: `leadscore up` says when it cannot be reached
and when it is back, once per change, and never tries to manage it."""

from __future__ import annotations

import socket

from leadscore_pipeline.db.watch import DatabaseWatch


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nobody listens there
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def test_an_external_server_is_reported_unreachable_then_back_once_per_change(postgres_server_url: str):
    said: list[str] = []
    watch = DatabaseWatch(closed_port_url(), None, interval=0, say=said.append)
    assert watch.check() is False and watch.check() is False
    assert said == ["the database is unreachable (LEADSCORE_DATABASE_URL: not managed by us)"]

    watch.url = postgres_server_url  # the server answers again
    assert watch.check() is False and watch.check() is False
    assert said[1:] == ["the database is reachable again"]
