"""Stripe Events and webhook signatures, byte-for-byte like Stripe's.

The `Stripe-Signature` header is `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the
endpoint secret>`; `stripe.Webhook.construct_event` verifies it (and rejects timestamps older than its
tolerance, 300 s by default).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time

from tests.fake_stripe.core import Json, new_id, now


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header value Stripe would send with `payload` for endpoint `secret`."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode("utf-8"), f"{ts}.".encode() + payload, hashlib.sha256)
    return f"t={ts},v1={mac.hexdigest()}"


def make_event(
    type_: str,
    data_object: Json,
    *,
    api_version: str,
    account: str | None = None,
    previous_attributes: Json | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Json:
    """A Stripe Event (`evt_...`). Events about a connected account carry its id in `account`."""
    data: Json = {"object": copy.deepcopy(data_object)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    event: Json = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": now(),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type_,
    }
    if account is not None:
        event["account"] = account
    return event


def webhook_request(event: Json, secret: str, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the webhook POST Stripe would deliver for `event`."""
    payload = json.dumps(event, indent=2).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign_payload(payload, secret, timestamp),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return payload, headers
