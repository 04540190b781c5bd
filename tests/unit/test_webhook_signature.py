"""Standard Webhooks v1 verification and the Segment-style mapping of the webhook channel (SPEC §5)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from leadscore_pipeline.ingest.records import records_to_frame
from leadscore_pipeline.ingest.webhook import WebhookSignatureError, segment_records, sign_webhook, verify_webhook

SECRET = "whsec_" + base64.b64encode(b"first secret, 32 bytes long....!").decode()
OTHER = "whsec_" + base64.b64encode(b"the rotated-in second secret").decode()
NOW = 1_790_000_000
BODY = b'{"type": "track", "event": "Demo Requested", "userId": "u-1"}'


def signed(body: bytes = BODY, secret: str = SECRET, **kwargs) -> dict[str, str]:
    return sign_webhook(body, secret, msg_id="msg_1", timestamp=NOW, **kwargs)


def rejection(body: bytes, headers: dict[str, str], secrets=(SECRET,), now: float = NOW) -> WebhookSignatureError:
    with pytest.raises(WebhookSignatureError) as caught:
        verify_webhook(body, headers, list(secrets), now=now)
    return caught.value


def test_sign_then_verify_returns_the_webhook_id():
    headers = signed()
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert verify_webhook(BODY, headers, [SECRET], now=NOW) == "msg_1"


def test_defaults_give_a_fresh_timestamp_and_a_random_id():
    first, second = sign_webhook(BODY, SECRET), sign_webhook(BODY, SECRET)
    assert first["webhook-id"].startswith("msg_") and first["webhook-id"] != second["webhook-id"]
    assert verify_webhook(BODY, first, [SECRET]) == first["webhook-id"]


def test_known_vector_from_the_standard_webhooks_spec():
    # The example of github.com/standard-webhooks/standard-webhooks, signed independently of sign_webhook.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    assert verify_webhook(body, headers, [secret], now=1614265330) == "msg_p5jXN8AQM9LWM0D4loKWxJek"


def test_header_names_are_case_insensitive():
    headers = {name.title(): value for name, value in signed().items()}
    assert verify_webhook(BODY, headers, [SECRET], now=NOW) == "msg_1"


def test_bad_signature_is_rejected():
    headers = signed() | {"webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
    assert rejection(BODY, headers).reason == "no signature matches"
    assert rejection(BODY, signed(secret=OTHER)).header == "webhook-signature"


def test_tampered_body_or_id_is_rejected():
    assert rejection(BODY.replace(b"u-1", b"u-2"), signed()).reason == "no signature matches"
    assert rejection(BODY, signed() | {"webhook-id": "msg_2"}).reason == "no signature matches"
    assert rejection(BODY, signed() | {"webhook-timestamp": str(NOW + 1)}).reason == "no signature matches"


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_missing_header_is_named(header):
    headers = {name: value for name, value in signed().items() if name != header}
    error = rejection(BODY, headers)
    assert error.header == header
    assert header in error.reason and "missing" in error.reason


@pytest.mark.parametrize("stamp", ["soon", "1790000000.5", "-1790000000", "", "1e9"])
def test_non_integer_timestamp_is_rejected(stamp):
    error = rejection(BODY, signed() | {"webhook-timestamp": stamp})
    assert error.header == "webhook-timestamp"


@pytest.mark.parametrize(("offset", "passes"), [(-301, False), (301, False), (-299, True), (299, True), (300, True)])
def test_timestamp_tolerance_applies_both_ways(offset, passes):
    # `offset` is how far the sender's clock is from ours: negative means an old message.
    headers = sign_webhook(BODY, SECRET, msg_id="msg_1", timestamp=NOW + offset)
    if passes:
        assert verify_webhook(BODY, headers, [SECRET], now=NOW) == "msg_1"
    else:
        error = rejection(BODY, headers)
        assert (error.header, error.reason) == ("webhook-timestamp", "timestamp outside the 300 s tolerance")


def test_tolerance_is_configurable():
    headers = sign_webhook(BODY, SECRET, msg_id="msg_1", timestamp=NOW - 30)
    with pytest.raises(WebhookSignatureError, match="10 s tolerance"):
        verify_webhook(BODY, headers, [SECRET], tolerance_seconds=10, now=NOW)


def test_one_valid_signature_among_several_passes():
    good = signed()["webhook-signature"]
    wrong = "v1," + base64.b64encode(b"y" * 32).decode()
    headers = signed() | {"webhook-signature": f"{wrong} v1,not-base64!! {good}"}
    assert verify_webhook(BODY, headers, [SECRET], now=NOW) == "msg_1"


def test_rotation_accepts_a_message_signed_with_either_secret():
    for secret in (SECRET, OTHER):
        assert verify_webhook(BODY, signed(secret=secret), [SECRET, OTHER], now=NOW) == "msg_1"


def test_secret_without_prefix_is_used_as_utf8_bytes():
    headers = signed(secret="a plain passphrase")
    assert verify_webhook(BODY, headers, ["a plain passphrase"], now=NOW) == "msg_1"
    # The same key written the Standard Webhooks way: whsec_ + base64 of its bytes.
    as_whsec = "whsec_" + base64.b64encode(b"a plain passphrase").decode()
    assert verify_webhook(BODY, headers, [as_whsec], now=NOW) == "msg_1"
    rejection(BODY, headers, secrets=["another passphrase"])


def test_other_versions_are_ignored():
    good = signed()["webhook-signature"].removeprefix("v1,")
    assert rejection(BODY, signed() | {"webhook-signature": f"v2,{good}"}).reason == "no v1 signature in the header"
    assert verify_webhook(BODY, signed() | {"webhook-signature": f"v2,xyz v1,{good}"}, [SECRET], now=NOW) == "msg_1"


def test_signatures_interoperate_with_the_standardwebhooks_package():
    ours = sign_webhook(BODY, SECRET)
    assert Webhook(SECRET).verify(BODY, ours, json_parse=False) is None  # raises when the signature is not its own
    sent_at = datetime.fromtimestamp(NOW, UTC)
    theirs = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": Webhook(SECRET).sign("msg_1", sent_at, BODY),
    }
    assert verify_webhook(BODY, theirs, [SECRET], now=NOW) == "msg_1"


def test_an_unpadded_whsec_secret_is_accepted_as_the_package_accepts_it():
    # 31 bytes: standard base64 ends in "=", which some providers leave off.
    unpadded = "whsec_" + base64.b64encode(b"thirty-one bytes of secret key!").decode().rstrip("=")
    assert not unpadded.endswith("=")
    sent_at = datetime.fromtimestamp(NOW, UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": Webhook(unpadded).sign("msg_1", sent_at, BODY),
    }
    assert verify_webhook(BODY, headers, [unpadded], now=NOW) == "msg_1"


def test_missing_or_undecodable_secrets_are_a_configuration_error():
    with pytest.raises(ValueError, match="no webhook secret"):
        verify_webhook(BODY, signed(), [], now=NOW)
    with pytest.raises(ValueError, match="not valid base64") as caught:
        verify_webhook(BODY, signed(), ["whsec_%%%secret%%%"], now=NOW)
    assert "secret%%%" not in str(caught.value)  # the secret itself is never echoed


# Segment-style payloads -> LeadScore event records.


def test_single_track_call():
    payload = {
        "type": "track",
        "event": "Demo Requested",
        "messageId": "m-1",
        "userId": "u-1",
        "anonymousId": "anon-9",
        "timestamp": "2026-11-01T10:00:00Z",
        "properties": {"plan": "pro", "email": "Ann@Acme.io"},
    }
    assert segment_records(payload, "msg_1") == [
        {
            "event_id": "m-1",
            "event_type": "Demo_Requested",
            "timestamp": "2026-11-01T10:00:00Z",
            "lead_id": "u-1",
            "email": "Ann@Acme.io",
            "metadata": {
                "type": "track",
                "event": "Demo Requested",
                "anonymousId": "anon-9",
                "properties": {"plan": "pro", "email": "Ann@Acme.io"},
            },
        }
    ]


def test_identify_call_takes_its_type_and_traits():
    payload = {
        "type": "identify",
        "userId": "u-1",
        "traits": {"email": "ann@acme.io", "name": "Ann", "company": "Acme"},
    }
    (record,) = segment_records(payload, "msg_1")
    assert record["event_type"] == "identify"
    assert (record["email"], record["name"], record["company"]) == ("ann@acme.io", "Ann", "Acme")
    assert record["metadata"] == {"type": "identify", "traits": payload["traits"]}


def test_event_ids_fall_back_to_the_webhook_id_and_index():
    payload = [
        {"type": "page", "userId": "u-1"},
        {"type": "page", "userId": "u-1", "messageId": "m-2"},
        {"type": "page", "userId": "u-1", "messageId": ""},
    ]
    assert [r["event_id"] for r in segment_records(payload, "msg_7")] == ["msg_7:0", "m-2", "msg_7:2"]
    assert segment_records({"type": "page", "userId": "u-1"}, "msg_7")[0]["event_id"] == "msg_7:0"


def test_event_name_separators_become_one_underscore():
    names = ["Demo Requested", "sign-up", "  Trial -  Started ", "Order Completed!"]
    types = [segment_records({"event": n, "userId": "u"}, "w")[0]["event_type"] for n in names]
    assert types == ["Demo_Requested", "sign_up", "Trial_Started", "Order_Completed!"]
    # An empty event name falls back to the call type.
    assert segment_records({"event": " ", "type": "track", "userId": "u"}, "w")[0]["event_type"] == "track"


def test_traits_win_over_context_traits_over_properties_per_field():
    payload = {
        "type": "track",
        "event": "Signed Up",
        "traits": {"email": "", "name": "From Traits"},
        "context": {"traits": {"email": "ctx@acme.io", "name": "From Context", "company": None}},
        "properties": {"email": "props@acme.io", "name": "From Props", "company": "Props Inc"},
    }
    (record,) = segment_records(payload, "w")
    assert (record["email"], record["name"], record["company"]) == ("ctx@acme.io", "From Traits", "Props Inc")
    assert record["metadata"]["context_traits"] == payload["context"]["traits"]


def test_numeric_ids_become_strings_and_other_types_pass_through():
    (record,) = segment_records({"type": "identify", "userId": 42, "messageId": 7, "timestamp": 3}, "w")
    assert (record["lead_id"], record["event_id"], record["timestamp"]) == ("42", "7", 3)
    (record,) = segment_records({"type": "identify", "userId": True}, "w")
    assert record["lead_id"] is True  # the converter names it, instead of landing "True"


def test_nothing_known_means_keys_are_omitted():
    assert segment_records({"type": "page"}, "w") == [
        {"event_id": "w:0", "event_type": "page", "metadata": {"type": "page"}}
    ]


def test_non_objects_pass_through_to_the_converter():
    records = segment_records([{"type": "page", "userId": "u"}, "oops", 3], "w")
    assert records[1:] == ["oops", 3]
    _, errors = records_to_frame(records)
    assert {(e.index, e.field) for e in errors} == {(1, "event"), (2, "event")}
    # Every mapped record carries only fields the shared converter knows.
    _, errors = records_to_frame(segment_records({"type": "track", "event": "x", "traits": {}, "context": 1}, "w"))
    assert errors == []
