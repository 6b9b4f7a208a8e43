"""Payout holds: an operator blocks a flagged payee; previews say why, batches skip it, its
balance stays put, and once the hold is lifted the next batch pays it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from marketplace.ledger import AFFILIATE, AVAILABLE, SELLER
from tests.conftest import Backend
from tests.payouts.conftest import audit, balance, credit, items_of, make_payee
from tests.payouts.test_batches import approve, create


def hold(client: TestClient, operator: dict[str, str], owner_type: str, owner_id: object, reason: str) -> dict:
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
    assert [(h["id"], h["active"], h["reason"]) for h in listed] == [(placed["id"], False, "chargeback review")]
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
    assert client.get("/v1/payout-holds", headers=operator).json() == []
