"""Payout onboarding on both rails, and the Stripe webhook inbox, through the HTTP API.

Stripe runs against the fake Stripe server with the real SDK; webhooks are signed exactly as
Stripe signs them (`t=...,v1=HMAC-SHA256`)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Seller
from kernel import stripe_webhooks
from kernel.db import session_scope
from kernel.settings import Settings
from kernel.stripe_webhooks import HandlerContext, StripeHandlers
from kernel.tasking import install_celery, make_celery
from marketplace.bootstrap import STRIPE_HANDLERS, build_celery
from tests.catalog.conftest import WEBHOOK_SECRET, apply_seller, approved_seller
from tests.conftest import Backend, make_settings
from tests.fake_stripe import FakeStripe, sign_payload, webhook_request
from tests.test_worker import BROKER_DB, output_so_far, start_worker, wait_for

COUNTED: list[str] = []


def _count(context: HandlerContext, event: dict[str, Any]) -> None:
    COUNTED.append(event["id"])


FAIL_NEXT: list[bool] = []


def _flaky(context: HandlerContext, event: dict[str, Any]) -> None:
    context.session.add(Seller(name="written by a failing handler", email=f"{event['id']}@example.com"))
    context.session.flush()
    if FAIL_NEXT:
        raise RuntimeError("downstream unavailable")


@pytest.fixture(autouse=True, scope="module")
def inbox_with_test_handlers() -> Iterator[None]:
    """The platform's Stripe handlers plus the two above, wired as the composition root wires them
    (tasks in-process, like the rest of the suite)."""
    handlers = StripeHandlers((*STRIPE_HANDLERS, ("test.counted", _count), ("test.flaky", _flaky)))
    previous = install_celery(build_celery(make_settings("sqlite://", None), stripe_handlers=handlers))
    yield
    install_celery(previous)


def post_event(client: TestClient, event: dict[str, Any], secret: str = WEBHOOK_SECRET,
               timestamp: int | None = None) -> Any:
    payload, headers = webhook_request(event, secret, timestamp)
    return client.post("/v1/webhooks/stripe", content=payload, headers=headers)


def inbox(client: TestClient, operator: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/webhooks/events", params=params, headers=operator)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- manual rail ----------------------------------------------------------------------------------


def test_manual_rail_bank_reference_then_operator_verification(client: TestClient, operator: dict[str, str]) -> None:
    seller_id, headers = approved_seller(client, operator)
    url = "/v1/sellers/me/payout-account"
    verify = f"/v1/sellers/{seller_id}/payout-account/verify"
    assert client.post(verify, headers=operator).status_code == 409  # nothing to verify yet
    for body in ({}, {"bank_reference": ""}, {"bank_reference": "   "}, {"bank_reference": "x", "country": "DE"}):
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    response = client.post(url, json={"bank_reference": "DE89 3704 0044 0532 0130 00"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"rail": "manual", "payout_status": "onboarding", "stripe_account_id": None,
                               "onboarding_url": None, "bank_reference": "DE89 3704 0044 0532 0130 00"}
    assert client.post(verify, headers=headers).status_code == 403  # sellers do not verify themselves
    assert client.post(verify, headers=operator).json()["payout_status"] == "payouts_enabled"
    assert client.get(url, headers=headers).json()["payout_status"] == "payouts_enabled"
    # new bank details must be verified again before money follows them
    changed = client.post(url, json={"bank_reference": "FR14 2004 1010 0505 0001 3M02 606"}, headers=headers)
    assert changed.json()["payout_status"] == "onboarding"
    same = client.post(url, json={"bank_reference": "FR14 2004 1010 0505 0001 3M02 606"}, headers=headers)
    assert same.json()["payout_status"] == "onboarding"


def test_onboarding_needs_an_approved_seller(client: TestClient) -> None:
    _, headers = apply_seller(client)
    response = client.post("/v1/sellers/me/payout-account", json={"bank_reference": "IBAN"}, headers=headers)
    assert response.status_code == 409 and response.json()["type"].endswith("/seller-not-approved")


def test_webhook_endpoint_is_absent_without_a_secret(client: TestClient) -> None:
    response = client.post("/v1/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=x"})
    assert response.status_code == 404


# --- Stripe rail ----------------------------------------------------------------------------------


def test_stripe_onboarding_account_link_and_webhook_enable_payouts(
    client: TestClient, operator: dict[str, str], stripe_env: FakeStripe
) -> None:
    seller_id, headers = approved_seller(client, operator)
    response = client.post("/v1/sellers/me/payout-account", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["rail"], body["payout_status"]) == ("stripe", "onboarding")
    account_id = body["stripe_account_id"]
    assert body["onboarding_url"].startswith("https://connect.stripe.com/setup/")
    assert account_id in body["onboarding_url"]
    [account] = stripe_env.objects("account")
    assert (account["id"], account["type"], account["metadata"]) == (account_id, "express", {"seller_id": seller_id})
    created = [r for r in stripe_env.requests if r.path == "/v1/accounts"]
    # One account (above), asked for under one key: the SDK may retry a slow answer, with the same key.
    assert {r.idempotency_key for r in created} == {f"seller-account-{seller_id}"}

    again = client.post("/v1/sellers/me/payout-account", json={}, headers=headers).json()
    assert again["stripe_account_id"] == account_id and again["onboarding_url"] != body["onboarding_url"]
    assert len(stripe_env.objects("account")) == 1  # a fresh link, the same account

    event = stripe_env.complete_onboarding(account_id)  # the seller finishes Stripe's forms
    assert post_event(client, event).json() == {"status": "received", "event_id": event["id"]}
    me = client.get("/v1/sellers/me", headers=headers).json()
    assert me["payout_status"] == "payouts_enabled"
    [stored] = inbox(client, operator)
    assert (stored["external_id"], stored["type"], stored["account"], stored["attempts"]) == (
        event["id"], "account.updated", account_id, 1)
    assert stored["handled_at"] is not None and stored["last_error"] is None
    later = client.post("/v1/sellers/me/payout-account", headers=headers).json()  # e.g. Stripe wants more details
    assert (later["payout_status"], later["stripe_account_id"]) == ("payouts_enabled", account_id)
    assert later["onboarding_url"].startswith("https://connect.stripe.com/setup/")
    # Stripe verifies accounts on this rail; the manual verification does not apply
    assert client.post(f"/v1/sellers/{seller_id}/payout-account/verify", headers=operator).status_code == 409
    assert client.post("/v1/sellers/me/payout-account", json={"bank_reference": "IBAN"},
                       headers=headers).status_code == 422


def test_account_events_out_of_order_never_undo_a_newer_state(
    client: TestClient, operator: dict[str, str], stripe_env: FakeStripe
) -> None:
    _, headers = approved_seller(client, operator)
    account_id = client.post("/v1/sellers/me/payout-account", headers=headers).json()["stripe_account_id"]
    enabled = stripe_env.complete_onboarding(account_id)
    older = stripe_env.event("account.updated", {**enabled["data"]["object"], "payouts_enabled": False},
                             account=account_id)
    older["created"] = enabled["created"] - 60
    post_event(client, enabled)
    post_event(client, older)
    assert client.get("/v1/sellers/me", headers=headers).json()["payout_status"] == "payouts_enabled"
    newer = stripe_env.event("account.updated", {**enabled["data"]["object"], "payouts_enabled": False},
                             account=account_id)
    newer["created"] = enabled["created"] + 60
    post_event(client, newer)
    assert client.get("/v1/sellers/me", headers=headers).json()["payout_status"] == "onboarding"


@pytest.mark.parametrize("fault, created_at_stripe", [("500", 0), ("drop_after_success", 1)])
def test_stripe_failing_during_onboarding_is_a_502_and_a_retry_reuses_the_account(
    client: TestClient, operator: dict[str, str], stripe_env: FakeStripe, fault: str, created_at_stripe: int
) -> None:
    _, headers = approved_seller(client, operator)
    stripe_env.fail_next("/v1/accounts", fault, count=3, method="POST")  # type: ignore[arg-type]
    response = client.post("/v1/sellers/me/payout-account", headers=headers)
    assert response.status_code == 502, response.text
    assert response.json()["type"].endswith("/payment-rail-unavailable") and response.json()["retryable"] is True
    me = client.get("/v1/sellers/me", headers=headers).json()
    assert (me["payout_status"], me["stripe_account_id"]) == ("not_started", None)
    assert len(stripe_env.objects("account")) == created_at_stripe
    retried = client.post("/v1/sellers/me/payout-account", headers=headers).json()
    assert [a["id"] for a in stripe_env.objects("account")] == [retried["stripe_account_id"]]


# --- the webhook inbox ----------------------------------------------------------------------------


def test_bad_signatures_and_stale_timestamps_are_400_and_store_nothing(
    client: TestClient, operator: dict[str, str], stripe_env: FakeStripe
) -> None:
    event = stripe_env.event("test.counted", {"id": "obj_1", "object": "thing"})
    payload, headers = webhook_request(event, WEBHOOK_SECRET)
    attempts = [
        post_event(client, event, secret="whsec_someone_else"),
        post_event(client, event, timestamp=int(time.time()) - 301),  # older than the 300 s tolerance
        client.post("/v1/webhooks/stripe", content=payload.replace(b"obj_1", b"obj_2"), headers=headers),
        client.post("/v1/webhooks/stripe", content=payload, headers={"Content-Type": "application/json"}),
        client.post("/v1/webhooks/stripe", content=payload, headers={**headers, "Stripe-Signature": "garbage"}),
    ]
    for response in attempts:
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/webhook-signature-invalid")
    assert inbox(client, operator) == []
    assert post_event(client, event, timestamp=int(time.time()) - 200).status_code == 200  # within tolerance


def test_a_replayed_event_is_a_duplicate_and_handled_once(
    client: TestClient, operator: dict[str, str], stripe_env: FakeStripe
) -> None:
    COUNTED.clear()
    event = stripe_env.event("test.counted", {"id": "obj_1", "object": "thing"})
    assert post_event(client, event).json()["status"] == "received"
    for _ in range(2):  # Stripe redelivers, or someone replays a captured delivery with a fresh signature
        response = post_event(client, event)
        assert response.status_code == 200 and response.json() == {"status": "duplicate", "event_id": event["id"]}
    assert [event["id"]] == COUNTED
    [stored] = inbox(client, operator)
    assert stored["attempts"] == 1 and stored["handled_at"] is not None


def test_events_without_handlers_are_stored_and_marked_handled(
    client: TestClient, operator: dict[str, str], stripe_env: FakeStripe
) -> None:
    event = stripe_env.event("balance.available", {"object": "balance"})
    assert post_event(client, event).json()["status"] == "received"
    assert inbox(client, operator, type="balance.available")[0]["handled_at"] is not None
    payload = b'{"object": "event"}'  # signed, but not an event
    response = client.post("/v1/webhooks/stripe", content=payload,
                           headers={"Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET)})
    assert response.status_code == 400 and response.json()["type"].endswith("/webhook-payload-invalid")


def test_a_failing_handler_rolls_back_its_writes_records_the_error_and_can_be_retried(
    client: TestClient, operator: dict[str, str], stripe_env: FakeStripe, env: Backend
) -> None:
    FAIL_NEXT[:] = [True]
    event = stripe_env.event("test.flaky", {"object": "thing"})
    assert post_event(client, event).status_code == 200  # Stripe gets its 2xx; we own the retry
    [stored] = inbox(client, operator, unhandled=True)
    assert (stored["attempts"], stored["handled_at"]) == (1, None)
    assert stored["last_error"] == "RuntimeError: downstream unavailable"
    with session_scope(env.runtime.sessions) as session:
        assert session.scalar(select(Seller).where(Seller.email == f"{event['id']}@example.com")) is None
    FAIL_NEXT.clear()
    retried = client.post(f"/v1/webhooks/events/{stored['id']}/retry", headers=operator)
    assert retried.status_code == 202
    assert inbox(client, operator, unhandled=True) == []
    [done] = inbox(client, operator)
    assert (done["attempts"], done["last_error"]) == (2, None)
    with session_scope(env.runtime.sessions) as session:
        assert session.scalar(select(Seller).where(Seller.email == f"{event['id']}@example.com")) is not None


@pytest.mark.postgres_only
def test_concurrent_deliveries_of_one_event_store_it_once(
    client: TestClient, operator: dict[str, str], stripe_env: FakeStripe, env: Backend
) -> None:
    """Two transactions insert the same event id at once: the second waits for the first and
    then inserts nothing (ON CONFLICT DO NOTHING on the unique key), without an error."""
    event = stripe_env.event("test.counted", {"object": "thing"})
    results: list[bool] = []

    def deliver(hold_seconds: float) -> None:
        with session_scope(env.runtime.sessions) as session:
            results.append(stripe_webhooks.store_event(session, stripe_webhooks.WebhookSource.STRIPE, event)[1])
            time.sleep(hold_seconds)  # keep the transaction open while the other one inserts

    first = threading.Thread(target=deliver, args=(0.3,))
    first.start()
    time.sleep(0.05)
    deliver(0.0)
    first.join()
    assert sorted(results) == [False, True]
    assert len(inbox(client, operator)) == 1


# --- a real worker --------------------------------------------------------------------------------


@pytest.fixture
def broker_settings(env: Backend, redis_url: str) -> Settings:
    redis.Redis.from_url(BROKER_DB).flushdb()
    return make_settings(env.settings.database_url, env.settings.redis_url, celery_broker_url=BROKER_DB)


@pytest.fixture
def worker(env: Backend, broker_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    process = start_worker(env)
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.postgres_only
@pytest.mark.celery_worker
def test_a_celery_worker_handles_the_stored_event(
    client: TestClient, operator: dict[str, str], stripe_env: FakeStripe, broker_settings: Settings,
    worker: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The webhook request only stores the event; a worker process on the Redis broker enables payouts."""
    sender = make_celery(broker_settings)

    def enqueue_to_broker(session: Session, task_name: str, *args: Any, countdown: float | None = None) -> None:
        sa_event.listen(session, "after_commit", lambda _s: sender.send_task(task_name, args=args), once=True)

    monkeypatch.setattr(stripe_webhooks, "enqueue_after_commit", enqueue_to_broker)
    _, headers = approved_seller(client, operator)
    account_id = client.post("/v1/sellers/me/payout-account", headers=headers).json()["stripe_account_id"]
    assert post_event(client, stripe_env.complete_onboarding(account_id)).json()["status"] == "received"

    def enabled() -> bool:
        return bool(client.get("/v1/sellers/me", headers=headers).json()["payout_status"] == "payouts_enabled")

    assert wait_for(enabled), output_so_far(worker)
