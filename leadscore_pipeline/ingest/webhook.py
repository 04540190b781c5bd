"""The signed webhook channel: Standard Webhooks v1 verification and the Segment-style event mapping."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from secrets import token_urlsafe
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300

# Unix seconds have 10 digits until the year 2286; a bound keeps int() off absurdly long digit strings.
MAX_TIMESTAMP_DIGITS = 12
_UNIX_SECONDS = re.compile(rf"[0-9]{{1,{MAX_TIMESTAMP_DIGITS}}}", re.ASCII)
# The library decodes whsec_ secrets leniently (it skips characters outside base64): a typo must not pass.
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}", re.ASCII)
# Runs of whitespace and dashes in a track call's name become one underscore: "Demo Requested" -> "Demo_Requested".
_EVENT_NAME_SEPARATORS = re.compile(r"[\s\-]+")


class WebhookSignatureError(Exception):
    """The webhook is not authentic or not fresh; `header` names the header at fault, `reason` says why."""

    def __init__(self, header: str, reason: str):
        super().__init__(f"{header}: {reason}")
        self.header = header
        self.reason = reason


class WebhookConfigError(ValueError):
    """The configured secrets are unusable: the server's problem, never the sender's."""


def _signer(secret: str) -> Webhook:
    """The standardwebhooks signer of a configured secret: `whsec_<base64>` is the Standard Webhooks form; a
    secret without the prefix is used as its UTF-8 bytes, for senders that just share a passphrase."""
    try:
        if not secret.startswith(SECRET_PREFIX):
            return Webhook(secret.encode())
        if not _BASE64.fullmatch(secret.removeprefix(SECRET_PREFIX)):
            raise ValueError
        return Webhook(secret)
    except EmptyWebhookSecretError:
        raise WebhookConfigError("a webhook secret is empty") from None
    except ValueError:  # binascii.Error too
        # Never echo the secret itself: this message may end up in a response or a log.
        raise WebhookConfigError("a webhook secret starting with whsec_ is not valid base64 after the prefix") from None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # A plain dict is case-sensitive; HTTP header names are not.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _required_header(headers: Mapping[str, str], name: str) -> str:
    value = _header(headers, name)
    if value is None or not value.strip():
        raise WebhookSignatureError(name, f"missing {name} header")
    return value.strip()


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Sequence[str],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> str:
    """Check a Standard Webhooks v1 signature over the raw body and return the webhook-id.

    Any of `secrets` (rotation) matching any `v1,` entry of the signature header passes; the timestamp must be
    within `tolerance_seconds` of `now` in either direction. Raises WebhookSignatureError naming the header at
    fault when the webhook is not authentic or not fresh, and WebhookConfigError when `secrets` is empty or
    holds an undecodable secret (a configuration problem, not the sender's).

    The signature is the `standardwebhooks` package's. Its own `verify` is not used: its window is fixed at
    5 minutes of the wall clock and its errors do not say which header is wrong, so the headers and the
    configurable window are checked here, then each secret's expected signature is compared in constant time."""
    if not secrets:
        raise WebhookConfigError("no webhook secret configured")
    signers = [_signer(secret) for secret in secrets]

    msg_id = _required_header(headers, ID_HEADER)
    timestamp = _required_header(headers, TIMESTAMP_HEADER)
    signature_header = _required_header(headers, SIGNATURE_HEADER)

    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise WebhookSignatureError(
            TIMESTAMP_HEADER, f"must be an integer number of unix seconds (1 to {MAX_TIMESTAMP_DIGITS} digits)"
        )
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance_seconds:
        raise WebhookSignatureError(TIMESTAMP_HEADER, f"timestamp outside the {tolerance_seconds} s tolerance")

    # Other versions (e.g. v1a, v2) are for other schemes; Standard Webhooks says ignore them.
    signatures = [entry.encode() for entry in signature_header.split() if entry.startswith("v1,")]
    if not signatures:
        raise WebhookSignatureError(SIGNATURE_HEADER, "no v1 signature in the header")
    sent_at = datetime.fromtimestamp(int(timestamp), UTC)
    expected = [signer.sign(msg_id, sent_at, body).encode() for signer in signers]
    # Every pair is compared (no early exit) so timing says nothing about which secret or entry came close.
    matched = False
    for candidate in expected:
        for signature in signatures:
            matched |= hmac.compare_digest(candidate, signature)
    if not matched:
        raise WebhookSignatureError(SIGNATURE_HEADER, "no signature matches")
    return msg_id


def sign_webhook(
    body: bytes, secret: str, *, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """The three headers a Standard Webhooks sender sends with `body`: for `leadscore webhook sign` and tests."""
    msg_id = msg_id or f"msg_{token_urlsafe(16)}"
    stamp = int(time.time()) if timestamp is None else timestamp
    signature = _signer(secret).sign(msg_id, datetime.fromtimestamp(stamp, UTC), body)
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: signature}


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _id_text(value: Any) -> Any:
    # Senders often use numeric ids; other wrong types go through for the validator to name.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _event_type(item: dict[str, Any]) -> Any:
    name = item.get("event") if _present(item.get("event")) else item.get("type")
    if isinstance(name, str):
        return _EVENT_NAME_SEPARATORS.sub("_", name.strip())
    return name


def _segment_record(item: dict[str, Any], fallback_id: str) -> dict[str, Any]:
    context = _object(item.get("context")) or {}
    traits = _object(item.get("traits"))
    context_traits = _object(context.get("traits"))
    properties = _object(item.get("properties"))

    record: dict[str, Any] = {
        "event_id": _id_text(item["messageId"]) if _present(item.get("messageId")) else fallback_id,
        "event_type": _event_type(item),
        "timestamp": item.get("timestamp"),
        "lead_id": _id_text(item.get("userId")),
    }
    for field in ("email", "name", "company"):
        record[field] = next(
            (
                source[field]
                for source in (traits, context_traits, properties)
                if source and _present(source.get(field))
            ),
            None,
        )
    metadata = {
        "type": item.get("type"),
        "event": item.get("event"),
        "anonymousId": item.get("anonymousId"),
        "properties": properties,
        "traits": traits,
        "context_traits": context_traits,
    }
    metadata = {key: value for key, value in metadata.items() if value is not None}
    if metadata:
        record["metadata"] = metadata
    return {key: value for key, value in record.items() if value is not None}


def segment_records(payload: Any, webhook_id: str) -> list[Any]:
    """Map one Segment-style event object, or an array of them, onto LeadScore's JSON event fields.

    - `messageId` -> event_id, else `{webhook_id}:{index}` (index in the array, 0 for a single object), so a
      redelivery of the same webhook carries the same ids and the pipeline dedups it.
    - `event` (a track call's name) -> event_type, else `type` (identify, page, ...). Runs of spaces and dashes
      become one underscore ("Demo Requested" -> "Demo_Requested"), which the validator then upper-cases to
      DEMO_REQUESTED; names with other characters are left for the validator to reject.
    - `timestamp` -> timestamp; `userId` -> lead_id; email, name and company each from the first of `traits`,
      `context.traits`, `properties` that has a non-empty value.
    - metadata keeps `type`, `event`, `anonymousId`, `properties`, `traits` and `context.traits` (as
      `context_traits`), so nothing the sender said is lost. No source is set: the channel default (webhook).
    - Numeric messageId/userId become strings; other wrong types, and array items that are not objects, pass
      through unchanged for the shared converter and validator to reject with their index.
    """
    items = payload if isinstance(payload, list) else [payload]
    return [
        _segment_record(item, f"{webhook_id}:{index}") if isinstance(item, dict) else item
        for index, item in enumerate(items)
    ]
