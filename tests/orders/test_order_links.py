"""Every order's secret link (orders.service.order_links) and the buyer's consents per purpose,
through the public API: the link is emailed with the order (an outbox row of the checkout's own
write), only its hash is stored, and it opens the order's status data and withdraws consents."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kernel.db import session_scope
from kernel.mail import OutboxMail
from orders.models import Order, OrderConsentChange
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


def _order_mail(env: Backend, to: str) -> OutboxMail:
    with session_scope(env.runtime.sessions) as session:
        rows = list(session.scalars(select(OutboxMail).where(OutboxMail.to_address == to,
                                                             OutboxMail.kind == "order_link")))
        session.expunge_all()
    assert len(rows) == 1, rows
    return rows[0]


def _stored(env: Backend, order_id: str) -> Order:
    with session_scope(env.runtime.sessions) as session:
        order = session.get(Order, uuid.UUID(order_id))
        assert order is not None
        session.expunge(order)
        return order


def test_a_storefront_order_is_emailed_its_link_and_the_link_shows_each_sellers_part_refunds_and_payment(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    w = worked_example(client, operator)
    body = cart(w, ("X-PRO", 1), ("Y-KIT", 2), email="ada@example.com",
                consents={"marketing": True, "partner_contact": False})
    body["buyer"]["phone"] = "+1 555 0100"
    order = ok(checkout(client, "a-store", body), 201)
    token = order["status_token"]
    base = env.runtime.settings.public_base_url.rstrip("/")
    assert order["status_url"] == f"{base}/s/a-store/orders/{token}"

    mail = _order_mail(env, "ada@example.com")
    assert order["status_url"] in mail.body and order["id"] in mail.body and mail.sent_at is None
    stored = _stored(env, order["id"])
    assert stored.status_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str({c.key: getattr(stored, c.key) for c in Order.__table__.columns})
    assert stored.consents == {"marketing": True, "partner_contact": False}

    page = ok(client.get(f"/v1/order-status/{token}"))
    assert page["id"] == order["id"] and page["status"] == "awaiting_payment"
    assert page["storefront"] == {"slug": "a-store", "name": "A-Store"}
    assert page["total"] == {"amount": 7499, "currency": "USD"}
    assert page["payment"]["rail"] == "manual" and order["id"] in page["payment"]["instructions"]
    assert sorted((p["seller_name"], p["amount"]["amount"], len(p["lines"])) for p in page["parts"]) == [
        ("X", 4999, 1), ("Y", 2500, 1)]
    assert page["buyer"]["email"] == "ada@example.com" and page["buyer"]["phone"] == "+1 555 0100"
    assert page["consents"] == {"order_updates": True, "marketing": True, "partner_contact": False}

    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    x_part = next(p for p in page["parts"] if p["seller_name"] == "X")
    x = w.sellers["X"].headers
    ok(client.post(f"/v1/sub-orders/{x_part['id']}/accept", headers=x))
    ok(client.post(f"/v1/sub-orders/{x_part['id']}/ship", headers=x, json={"tracking_number": "1Z9", "carrier": "UPS"}))
    y_line = next(p for p in page["parts"] if p["seller_name"] == "Y")["lines"][0]
    ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator,
                   json={"lines": [{"order_line_id": y_line["id"], "quantity": 1}]}), 201)

    page = ok(client.get(f"/v1/order-status/{token}"))
    parts = {p["seller_name"]: p for p in page["parts"]}
    assert page["status"] == "paid" and parts["X"]["status"] == "shipped"
    assert parts["X"]["shipment"]["tracking_number"] == "1Z9" and parts["X"]["shipment"]["carrier"] == "UPS"
    assert parts["Y"]["shipment"] is None and parts["Y"]["refunded"]["amount"] == 1250
    assert [r["amount"]["amount"] for r in page["refunds"]] == [1250]
    assert page["refunded"]["amount"] == 1250


def test_a_direct_checkout_links_to_the_neutral_path_and_a_replay_carries_no_token(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    w = worked_example(client, operator)
    body = cart(w, ("X-PRO", 1), email="bo@example.com")
    first = ok(checkout(client, None, body, key="direct-key-1"), 201)
    replay = client.post("/v1/checkout", json=body, headers={"Idempotency-Key": "direct-key-1"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    base = env.runtime.settings.public_base_url.rstrip("/")
    assert first["status_url"] == f"{base}/order-status/{first['status_token']}"
    assert replay.json()["status_token"] is None and replay.json()["status_url"] is None
    assert first["status_url"] in _order_mail(env, "bo@example.com").body  # one mail: the replay sent none
    assert ok(client.get(f"/v1/order-status/{first['status_token']}"))["consents"] == {
        "order_updates": True, "marketing": False, "partner_contact": False}  # nothing sent: the defaults
    assert _stored(env, first["id"]).consents is None


def test_an_unknown_or_malformed_link_is_a_404_problem(client: TestClient) -> None:
    for token in ("x" * 32, "short"):
        response = client.get(f"/v1/order-status/{token}")
        assert response.status_code in (404, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/order-status/" + "x" * 32).json()["type"].endswith("order-link-not-found")
    answer = client.post("/v1/order-status/" + "y" * 32 + "/consent-withdrawals", json={"purposes": ["marketing"]})
    assert answer.status_code == 404


def test_an_unknown_consent_purpose_is_refused_and_writes_no_order(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    w = worked_example(client, operator)
    response = checkout(client, "a-store", cart(w, ("X-PRO", 1), consents={"telepathy": True}))
    assert response.status_code == 422 and "telepathy" in response.json()["detail"]
    strict = checkout(client, "a-store", cart(w, ("X-PRO", 1), consents={"marketing": "yes"}))
    assert strict.status_code == 422
    with session_scope(env.runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 0


def test_the_link_withdraws_consents_never_grants_them_and_keeps_the_history(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    w = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(w, ("X-PRO", 1), consents={"marketing": True,
                                                                           "partner_contact": True})), 201)
    url = f"/v1/order-status/{order['status_token']}/consent-withdrawals"
    page = ok(client.post(url, json={"purposes": ["marketing"]}))
    assert page["consents"] == {"order_updates": True, "marketing": False, "partner_contact": True}
    again = ok(client.post(url, json={"purposes": ["marketing", "order_updates"]}))
    assert again["consents"] == {"order_updates": False, "marketing": False, "partner_contact": True}
    refused = client.post(url, json={"purposes": ["telepathy"]})
    assert refused.status_code == 422
    assert client.post(url, json={"purposes": []}).status_code == 422
    with session_scope(env.runtime.sessions) as session:
        changes = [(c.purpose, c.granted, c.source) for c in session.scalars(
            select(OrderConsentChange).order_by(OrderConsentChange.created_at, OrderConsentChange.purpose))]
    assert sorted(changes) == [("marketing", False, "order_link"), ("order_updates", False, "order_link")]


def test_the_consent_purposes_are_listed_publicly_for_storefronts_to_render(client: TestClient) -> None:
    purposes: list[dict[str, Any]] = ok(client.get("/v1/consent-purposes"))
    assert [(p["name"], p["default"]) for p in purposes] == [
        ("order_updates", True), ("marketing", False), ("partner_contact", False)]
    assert all(p["title"] and p["description"] for p in purposes)
