"""The bench's built-in load client: keep-alive, sized and chunked bodies, closed connections, errors counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.read import Measured, Read, run_builtin


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the response says otherwise
    connections = 0

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_GET(self) -> None:  # the name http.server calls
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"a":', b"1}"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        body = b'{"status": "ok"}'
        self.send_response({"/missing": 404}.get(self.path, 200))
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.connections = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def measure(base: str, paths: list[str]) -> Measured:
    return run_builtin(base, Read("test", paths, bar_ms=1_000), {}, seconds=0.5, connections=2)


def test_keep_alive_reuses_connections_and_reads_both_body_kinds(server: str) -> None:
    measured = measure(server, ["/ok", "/chunked"])
    assert measured.requests > 20
    assert measured.statuses == {"200": measured.requests}
    assert measured.errors == 0 and measured.passed
    assert measured.p50_ms <= measured.p99_ms <= measured.max_ms
    assert Handler.connections == 2  # one per client connection, kept alive throughout


def test_a_closed_connection_is_reopened_not_an_error(server: str) -> None:
    measured = measure(server, ["/close"])
    assert measured.requests > 5 and measured.errors == 0
    assert Handler.connections >= measured.requests  # the server closed each one after its answer


def test_non_2xx_answers_are_errors_and_fail_the_bar(server: str) -> None:
    measured = measure(server, ["/ok", "/missing"])
    assert measured.statuses["404"] > 0 and measured.statuses["200"] > 0
    assert measured.errors == measured.statuses["404"]
    assert measured.passed is False


def test_a_refused_connection_is_counted_not_raised() -> None:
    measured = measure("http://127.0.0.1:9", ["/ok"])  # the discard port: nothing listens there
    assert measured.requests == 0
    assert measured.errors > 0 and measured.passed is False
