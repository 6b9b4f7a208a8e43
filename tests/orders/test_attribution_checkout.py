"""Checkout outside a storefront: attribution from a referral click or a coupon, with the same
engine the preview endpoint uses, and signed webhooks to sellers."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel.db import session_scope
from kernel.outbound import WebhookDelivery, sign
from tests.conftest import Backend, WebhookReceiver
from tests.orders.world import World, cart, checkout, ok, worked_example


def test_referral_click_attributes_a_direct_checkout_and_preview_matches_it(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    link = ok(client.post("/v1/referral-links", headers=world.affiliates["S"].headers,
                          json={"target_url": "https://shop.example/x"}), 201)
    redirect = client.get(f"/r/{link['code']}", follow_redirects=False)
    assert redirect.status_code in (302, 307)
    token = parse_qs(urlsplit(redirect.headers["location"]).query)["mk_ref"][0]

    body = cart(world, ("X-PRO", 1), attribution_token=token)
    preview = ok(client.post("/v1/commissions/preview", headers=world.affiliates["S"].headers, json={
        "items": body["items"], "buyer_email": body["buyer"]["email"], "attribution_token": token,
    }))
    order = ok(checkout(client, None, body), 201)
    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert full["attribution_source"] == "click"
    assert full["affiliate_id"] == world.affiliates["S"].id
    # S sells on its own (no storefront split): it earns X's whole 800 bps of 4999.
    assert [(c["affiliate_id"], c["amount"]["amount"]) for c in full["commissions"]] == [
        (world.affiliates["S"].id, 400)
    ]
    # The preview named every party's share exactly as checkout then booked it.
    booked = {("platform", None): full["platform_fee"]["amount"]}
    for share in full["shares"]:
        booked[("seller", share["seller_id"])] = share["seller_net"]["amount"]
    for commission in full["commissions"]:
        key = ("affiliate", commission["affiliate_id"])
        booked[key] = booked.get(key, 0) + commission["amount"]["amount"]
    assert {(p["party_type"], p["party_id"]): p["amount"]["amount"] for p in preview["parties"]} == booked
    assert preview["total"]["amount"] == full["total"]["amount"]


def test_coupon_discounts_the_buyer_and_credits_its_affiliate(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = World(client, operator)
    world.seller("X")
    world.product("X", "Studio Suite", [("X-PRO", "Pro", 5000, 10)])
    program = world.program("X", {"default": {"bps": 1000}}, coupon_discount_bps=1000)
    world.affiliate("A", joins=["X"])
    ok(client.post(f"/v1/programs/{program}/coupons", headers=world.sellers["X"].headers,
                   json={"code": "SAVE10", "affiliate_id": world.affiliates["A"].id}), 201)
    order = ok(checkout(client, None, cart(world, ("X-PRO", 2), coupon_code="SAVE10")), 201)
    assert order["subtotal"]["amount"] == 10000
    assert order["discount"]["amount"] == 1000
    assert order["total"]["amount"] == 9000
    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert full["attribution_source"] == "coupon"
    assert full["platform_fee"]["amount"] == 900
    assert full["commission_total"]["amount"] == 900
    assert full["shares"][0]["seller_net"]["amount"] == 7200


def test_a_browser_that_followed_a_referral_link_is_attributed_by_its_mk_ref_cookie(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    link = ok(client.post("/v1/referral-links", headers=world.affiliates["S"].headers,
                          json={"target_url": "https://shop.example/x"}), 201)
    client.cookies.clear()
    assert client.get(f"/r/{link['code']}", follow_redirects=False).cookies.get("mk_ref")  # the browser keeps it

    order = ok(checkout(client, None, cart(world, ("X-PRO", 1))), 201)  # no token in the body

    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert (full["attribution_source"], full["affiliate_id"]) == ("click", world.affiliates["S"].id)
    client.cookies.clear()


def test_seller_gets_a_signed_order_created_webhook_and_failures_are_logged_for_retry(
    client: TestClient, operator: dict[str, str], env: Backend, webhook_receiver: str
) -> None:
    world = World(client, operator)
    world.seller("X", webhook_url=webhook_receiver)
    world.product("X", "Studio Suite", [("X-PRO", "Pro", 5000, 10)])
    WebhookReceiver.fail_first = [True]  # the first delivery attempt gets a 503
    order = ok(checkout(client, None, cart(world, ("X-PRO", 1))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    with session_scope(env.runtime.sessions) as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert (delivery.event_type, delivery.status, delivery.attempts) == ("order.created", "pending", 1)
        assert delivery.last_error == "HTTP 503" and delivery.next_attempt_at is not None
    from kernel.tasking import installed_celery

    installed_celery().tasks["webhooks.deliver"].apply(args=(str(delivery.id),))
    headers, body = WebhookReceiver.received[0]
    timestamp = headers["Marketplace-Signature"].split(",")[0][2:]
    # Verified with the seller's own secret, read with its own key; another seller's does not verify.
    secret = ok(client.get("/v1/webhook-secret", headers=world.sellers["X"].headers))["secret"]
    assert headers["Marketplace-Signature"] == sign(secret, body, int(timestamp))
    other = World(client, operator).seller("Other")
    other_secret = ok(client.get("/v1/webhook-secret", headers=other.headers))["secret"]
    assert other_secret != secret and headers["Marketplace-Signature"] != sign(other_secret, body, int(timestamp))
    assert client.get("/v1/webhook-secret", headers=operator).status_code == 403
    assert json.loads(body)["type"] == "order.created"
    assert json.loads(body)["data"]["order_id"] == order["id"]
    with session_scope(env.runtime.sessions) as session:
        assert session.get(WebhookDelivery, delivery.id).status == "delivered"  # type: ignore[union-attr]
