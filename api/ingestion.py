"""What the JSON ingestion endpoints share: a bounded body, JSON parsing, batch limits, and landing all or
nothing, acknowledged only after the commit."""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from fastapi import Request

from api.body_limits import declared_larger
from api.database_errors import landing_problem
from api.errors import ClientError, field_error
from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.ingest.accept import RejectedEvents, accept_events
from leadscore_pipeline.settings import Settings

# Python's json recurses once per level and fails past ~1,000; no event needs more than a few levels.
MAX_JSON_DEPTH = 64
MAX_JSON_INT_DIGITS = 4300  # Python's own limit on converting digits to an int

# A string literal, escapes included; an unterminated one runs to the end, so every match attempt succeeds
# and stripping strings stays linear.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, read in chunks: a 413 as soon as it passes `max_bytes` (or declares more), the rest unread."""
    if declared_larger(request.headers, max_bytes):
        raise field_error(413, "body", f"larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise field_error(413, "body", f"larger than {max_bytes} bytes")
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """The body as JSON, or a 422 naming `body` and the reason. Besides malformed JSON it refuses what would
    fail later: nesting past MAX_JSON_DEPTH, integers past MAX_JSON_INT_DIGITS digits, numbers too large for a
    float, NaN and Infinity (not JSON; jsonb refuses them). NUL and lone surrogates are left to the event
    validator, which names the field and, in a batch, every index."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise field_error(422, "body", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if _nesting_depth(body) > MAX_JSON_DEPTH:
        raise field_error(422, "body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise field_error(422, "body", f"not valid JSON: {exc}") from None
    except ValueError as exc:  # raised by the parse hooks below
        raise field_error(422, "body", str(exc)) from None
    return value


def _nesting_depth(body: bytes) -> int:
    """How deep brackets outside strings nest, counting unclosed ones; cheap when there are few brackets."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(_DEPTH_STEP[bracket] for bracket in brackets), default=0)


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError(f"an integer with more than {MAX_JSON_INT_DIGITS} digits")
    return int(digits)


def _finite_float(digits: str) -> float:
    number = float(digits)
    if not math.isfinite(number):
        raise ValueError(f"a number too large for a 64-bit float: {digits[:20]}...")
    return number


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def check_batch_size(records: list[Any], settings: Settings) -> None:
    if len(records) > settings.max_batch_events:
        raise field_error(413, "body", f"at most {settings.max_batch_events} events per request, got {len(records)}")
    if not records:
        raise field_error(422, "body", "no events: the array is empty")


def land_all_or_nothing(records: list[Any], channel: str, settings: Settings) -> list[str]:
    """Blocking: run it in the threadpool. Every record lands, or none and a 422 lists every bad index."""
    try:
        # The transaction commits when this block ends: only then is the request acknowledged.
        with get_engine().begin() as conn:
            return accept_events(conn.connection.driver_connection, records, channel=channel, settings=settings)
    except RejectedEvents as rejected:
        raise ClientError(422, [error.as_dict() for error in rejected.errors]) from None
    except Exception as exc:
        problem = landing_problem(exc)  # a value the validator passed but Postgres refused
        if problem is None:
            raise
        raise ClientError(422, [problem.as_dict()]) from None
