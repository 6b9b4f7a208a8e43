"""Payout holds: an operator blocks a flagged payee; previews say why, batches skip it, its
balance stays put, and once the hold is lifted the next batch pays it."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel.clock import clock
from kernel.db import session_scope
from kernel.ledger import AFFILIATE, AVAILABLE, SELLER
from payouts.service import holds
from payouts.service.runner import freeze_chunk, mark_sending, send_manual
from tests.conftest import Backend
from tests.payouts.conftest import (
    StripeBackend,
    audit,
    balance,
    credit,
    items_of,
    make_payee,
    stripe_account,
)
from tests.payouts.test_batches import approve, create, get_batch


def hold(
    client: TestClient, operator: dict[str, str], owner_type: str, owner_id: object, reason: str
) -> dict[str, Any]:
    response = client.post("/v1/payout-holds", headers=operator,
                           json={"owner_type": owner_type, "owner_id": str(owner_id), "reason": reason})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_held_payee_is_blocked_with_the_reason_skipped_by_a_batch_and_paid_after_release(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    flagged, fine = make_payee(env, AFFILIATE), make_payee(env, SELLER)
    credit(env, AFFILIATE, flagged, 3000)
    credit(env, SELLER, fine, 5000)
    batch = create(client, operator)  # both queued; the hold comes before the run
    placed = hold(client, operator, AFFILIATE, flagged, "chargeback review")

    preview = client.post("/v1/payout-batches", json={"currency": "USD", "preview": True}, headers=operator).json()
    approve(client, operator, batch["id"])

    assert [(b["owner_id"], b["reason"]) for b in preview["blocked"]] == [
        (str(flagged), "payouts held by the operator: chargeback review")]
    statuses = {i.owner_id: (i.status, i.failure_reason) for i in items_of(env, batch["id"])}
    assert statuses[flagged] == ("skipped", "payouts held by the operator: chargeback review")
    assert statuses[fine][0] == "paid"
    assert balance(env, AFFILIATE, flagged, AVAILABLE) == 3000  # untouched
    assert client.post("/v1/payout-holds", headers=operator, json={
        "owner_type": AFFILIATE, "owner_id": str(flagged), "reason": "again"}).status_code == 409

    released = client.post(f"/v1/payout-holds/{placed['id']}/release", headers=operator)
    assert released.status_code == 200 and released.json()["active"] is False
    assert client.post(f"/v1/payout-holds/{placed['id']}/release", headers=operator).status_code == 409
    second = create(client, operator)
    approve(client, operator, second["id"])

    assert [(i.owner_id, i.status, i.amount) for i in items_of(env, second["id"])] == [(flagged, "paid", 3000)]
    listed = client.get("/v1/payout-holds", headers=operator).json()
    assert [(h["id"], h["active"], h["reason"]) for h in listed["items"]] == [
        (placed["id"], False, "chargeback review")]
    assert audit(env) == []


def test_holds_are_for_operators_and_name_real_payees(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    seller = make_payee(env, SELLER)
    unknown = client.post("/v1/payout-holds", headers=operator,
                          json={"owner_type": SELLER, "owner_id": "00000000-0000-0000-0000-000000000001",
                                "reason": "x"})
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("payee-not-found")
    empty = client.post("/v1/payout-holds", headers=operator,
                        json={"owner_type": SELLER, "owner_id": str(seller), "reason": ""})
    assert empty.status_code == 422
    no_key = client.post("/v1/payout-holds", json={"owner_type": SELLER, "owner_id": str(seller), "reason": "x"})
    assert no_key.status_code == 401
    assert client.get("/v1/payout-holds", headers=operator).json() == {"items": [], "next_cursor": None}


def test_a_hold_placed_while_a_stripe_transfer_waits_for_its_retry_stops_the_transfer(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    payee = make_payee(s.env, SELLER, stripe_account=stripe_account(s.fake), bank=None)
    credit(s.env, SELLER, payee, 2500)
    s.fake.fail_next("/v1/transfers", "500", count=3, method="POST")  # no transfer made: deferred
    batch_id = s.client.post("/v1/payout-batches", json={"currency": "USD"}, headers=operator).json()["id"]
    assert s.client.post(f"/v1/payout-batches/{batch_id}/approve", headers=operator).status_code == 200
    assert [i.status for i in items_of(s.env, batch_id)] == ["sending"] and s.fake.objects("transfer") == []

    hold(s.client, operator, SELLER, payee, "fraud review")  # before the retry: no money has left
    clock.advance(timedelta(seconds=30))
    s.client.post(f"/v1/payout-batches/{batch_id}/run", headers=operator)

    [item] = items_of(s.env, batch_id)
    assert s.fake.objects("transfer") == []
    assert (item.status, item.failure_reason) == ("failed", "not sent: payouts held by the operator: fraud review")
    assert balance(s.env, SELLER, payee, AVAILABLE) == 2500  # back, for a batch after the hold is lifted
    assert audit(s.env) == []


def test_a_hold_placed_after_the_freeze_keeps_the_payee_out_of_the_manual_export(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    flagged, fine = make_payee(env, SELLER), make_payee(env, SELLER)
    credit(env, SELLER, flagged, 3000)
    credit(env, SELLER, fine, 4000)
    batch = create(client, operator)
    with session_scope(env.runtime.sessions) as session:  # a worker froze and marked the chunk...
        freeze_chunk(session, env.runtime.settings, uuid.UUID(batch["id"]), "USD", 1000, "manual", "w1")
    with session_scope(env.runtime.sessions) as session:
        sending = mark_sending(session, uuid.UUID(batch["id"]), 100, "w1")
    hold(client, operator, SELLER, flagged, "chargeback review")  # ...then the operator held one payee

    assert send_manual(env.runtime, uuid.UUID(batch["id"]), sending) == (1, 1)

    statuses = {i.owner_id: (i.status, i.failure_reason) for i in items_of(env, batch["id"])}
    assert statuses == {fine: ("paid", None),
                        flagged: ("failed", "not sent: payouts held by the operator: chargeback review")}
    exported = Path(get_batch(client, operator, batch["id"])["export_path"]).read_text()
    assert str(fine) in exported and str(flagged) not in exported
    assert balance(env, SELLER, flagged, AVAILABLE) == 3000
    assert audit(env) == []


@pytest.mark.postgres_only
def test_two_holds_placed_at_once_on_one_payee_give_one_hold_and_a_409(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payee = make_payee(env, SELLER)
    answer: dict[str, Any] = {}

    def second() -> None:
        answer["second"] = client.post("/v1/payout-holds", headers=operator,
                                       json={"owner_type": "seller", "owner_id": str(payee), "reason": "second"})

    with session_scope(env.runtime.sessions) as first:
        holds.place_hold(first, SELLER, payee, "first", "test")  # flushed, not committed yet
        racer = threading.Thread(target=second)
        racer.start()
        racer.join(timeout=1.0)
        assert racer.is_alive()  # waiting on the unique index for the first transaction
    racer.join(timeout=10)

    assert answer["second"].status_code == 409, answer["second"].text
    assert answer["second"].headers["content-type"].startswith("application/problem+json")
    assert [h["reason"] for h in client.get("/v1/payout-holds", headers=operator).json()["items"]] == ["first"]


def test_the_holds_list_is_a_cursor_page_like_every_other_list(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payees = [make_payee(env, SELLER) for _ in range(3)]
    placed = [hold(client, operator, SELLER, payee, f"review {n}")["id"] for n, payee in enumerate(payees)]
    client.post(f"/v1/payout-holds/{placed[0]}/release", headers=operator)
    first = client.get("/v1/payout-holds", headers=operator, params={"limit": 2}).json()
    assert [h["id"] for h in first["items"]] == [placed[2], placed[1]] and first["next_cursor"]
    rest = client.get("/v1/payout-holds", headers=operator, params={"limit": 2, "cursor": first["next_cursor"]})
    assert rest.json() == {"items": [rest.json()["items"][0]], "next_cursor": None}
    assert rest.json()["items"][0]["id"] == placed[0]
    active = client.get("/v1/payout-holds", headers=operator, params={"active": "true"}).json()
    assert [h["id"] for h in active["items"]] == [placed[2], placed[1]] and active["next_cursor"] is None
