"""The real API served by uvicorn on a free port in a background thread, for tests that need a socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

START_SECONDS = 20


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Yield the base URL of `app` served on 127.0.0.1; the server stops when the block ends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # our own socket: the port is known before the server starts, no race
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start within {START_SECONDS} s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_SECONDS)
        listener.close()
