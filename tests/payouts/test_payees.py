"""What payees see: their own payouts, the commissions and sales each covers, and webhooks."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel.auth import Role
from kernel.db import session_scope
from kernel.ledger import AFFILIATE, SELLER
from kernel.outbound import WebhookDelivery
from orders.models import Commission, SubOrder
from tests.conftest import Backend, bearer, issue_key
from tests.payouts.conftest import audit, credit, items_of, make_payee, matured_sale


def run_batch(client: TestClient, operator: dict[str, str]) -> str:
    created = client.post("/v1/payout-batches", json={"currency": "USD"}, headers=operator)
    assert created.status_code == 201, created.text
    batch_id: str = created.json()["id"]
    assert client.post(f"/v1/payout-batches/{batch_id}/approve", headers=operator).status_code == 200
    return batch_id


def test_payees_see_only_their_own_payouts_and_the_commissions_and_sales_each_covers(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    seller, other_seller = make_payee(env, SELLER), make_payee(env, SELLER)
    affiliate = make_payee(env, AFFILIATE)
    first = matured_sale(env, seller, affiliate, seller_net=4099, commission=400)
    second = matured_sale(env, seller, affiliate, seller_net=2050, commission=700)
    other = matured_sale(env, other_seller, affiliate, seller_net=3000, commission=300)
    batch_id = run_batch(client, operator)
    items = {(i.owner_type, i.owner_id): i for i in items_of(env, batch_id)}
    seller_item, affiliate_item = items[(SELLER, seller)], items[(AFFILIATE, affiliate)]
    seller_headers = bearer(issue_key(env, Role.SELLER, seller))
    affiliate_headers = bearer(issue_key(env, Role.AFFILIATE, affiliate))

    mine = client.get("/v1/payouts", headers=affiliate_headers).json()
    detail = client.get(f"/v1/payouts/{affiliate_item.id}", headers=affiliate_headers).json()
    sales = client.get(f"/v1/payouts/{seller_item.id}", headers=seller_headers).json()

    assert [p["id"] for p in mine["items"]] == [str(affiliate_item.id)]
    assert mine["items"][0]["status"] == "paid" and mine["items"][0]["amount"]["amount"] == 1400
    assert sorted((c["commission_id"], c["amount"]["amount"]) for c in detail["commissions"]) == sorted(
        [(str(first.commission_id), 400), (str(second.commission_id), 700), (str(other.commission_id), 300)])
    assert detail["sales"] == []
    assert sorted((s["sub_order_id"], s["amount"]["amount"]) for s in sales["sales"]) == sorted(
        [(str(first.sub_order_id), 4099), (str(second.sub_order_id), 2050)])
    assert client.get(f"/v1/payouts/{items[(SELLER, other_seller)].id}", headers=seller_headers).status_code == 404
    assert client.get(f"/v1/payouts/{uuid.uuid4()}", headers=seller_headers).status_code == 404
    assert len(client.get("/v1/payouts", headers=operator).json()["items"]) == 3
    with session_scope(env.runtime.sessions) as session:
        commissions = session.scalars(select(Commission).where(Commission.affiliate_id == affiliate)).all()
        subs = session.scalars(select(SubOrder).where(SubOrder.seller_id == seller)).all()
        assert {(c.status, c.payout_item_id) for c in commissions} == {("paid", affiliate_item.id)}
        assert {s.payout_item_id for s in subs} == {seller_item.id}
    assert audit(env) == []


def test_payee_payout_list_pages_with_a_cursor_newest_first(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    seller = make_payee(env, SELLER)
    for amount in (1500, 2500, 3500):
        credit(env, SELLER, seller, amount)
        run_batch(client, operator)
    headers = bearer(issue_key(env, Role.SELLER, seller))

    first = client.get("/v1/payouts", params={"limit": 2}, headers=headers).json()
    rest = client.get("/v1/payouts", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers).json()

    assert [p["amount"]["amount"] for p in first["items"]] == [3500, 2500]
    assert [p["amount"]["amount"] for p in rest["items"]] == [1500] and rest["next_cursor"] is None


def test_a_paid_payout_sends_a_payout_paid_webhook_to_the_payee(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    seller = make_payee(env, SELLER, webhook_url="http://127.0.0.1:9/hooks")
    silent = make_payee(env, SELLER)  # no webhook URL: no delivery
    credit(env, SELLER, seller, 1500)
    credit(env, SELLER, silent, 1500)
    batch_id = run_batch(client, operator)

    with session_scope(env.runtime.sessions) as session:
        deliveries = session.scalars(select(WebhookDelivery)).all()
        assert [(d.recipient_id, d.event_type) for d in deliveries] == [(seller, "payout.paid")]
        data = deliveries[0].payload["data"]
    [item] = [i for i in items_of(env, batch_id) if i.owner_id == seller]
    assert data["payout_id"] == str(item.id) and data["status"] == "paid"
    assert data["amount"] == {"amount": 1500, "currency": "USD"} and data["rail_reference"] == item.rail_reference


def test_payouts_are_not_for_anonymous_callers(client: TestClient) -> None:
    assert client.get("/v1/payouts").status_code == 401
