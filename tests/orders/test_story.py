"""The whole order story through the HTTP API: many sellers, a market maker splitting with a
specialist, a storefront, several orders, payment, fulfilment, a partial refund, the holding
period passing, and balances that match to the minor unit. Plus the Stripe rail end to end."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel.clock import clock
from kernel.db import session_scope
from kernel.stripe_webhooks import WebhookEvent
from kernel.tasking import installed_celery
from marketplace.bootstrap import audit_ledger
from orders.models import Order
from orders.service import settlement
from tests.catalog.conftest import WEBHOOK_SECRET
from tests.conftest import Backend, bearer, issue_key
from tests.fake_stripe import FakeStripe
from tests.fake_stripe.base import Ctx
from tests.fake_stripe.webhooks import webhook_request
from tests.orders.world import World, cart, checkout, ok, stock_of, worked_example


def balances(client: TestClient, world: World) -> dict[str, tuple[int, int]]:
    out = {}
    for name, party in [*world.sellers.items(), *world.affiliates.items()]:
        rows = ok(client.get("/v1/balances", headers=party.headers))["balances"]
        out[name] = (rows[0]["pending"], rows[0]["available"]) if rows else (0, 0)
    return out


def run_task(name: str) -> object:
    return installed_celery().tasks[name].apply().get()


def audit_clean(env: Backend) -> None:
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


def deliver_event(client: TestClient, event: dict[str, object]) -> dict[str, object]:
    """POST a Stripe event to our webhook endpoint, signed as Stripe signs it; must be accepted."""
    body, headers = webhook_request(event, WEBHOOK_SECRET)
    response = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def fulfil(client: TestClient, world: World, seller: str, sub_order_id: str) -> None:
    headers = world.sellers[seller].headers
    ok(client.post(f"/v1/sub-orders/{sub_order_id}/accept", headers=headers))
    ok(client.post(f"/v1/sub-orders/{sub_order_id}/ship", headers=headers,
                   json={"tracking_number": "1Z999", "carrier": "UPS"}))
    ok(client.post(f"/v1/sub-orders/{sub_order_id}/deliver", headers=headers))


@pytest.mark.parametrize("rail", ["manual", "stripe"])
def test_three_orders_settle_through_fulfilment_refund_and_holding_period_to_the_minor_unit(
    client: TestClient, operator: dict[str, str], env: Backend, rail: str, request: pytest.FixtureRequest
) -> None:
    stripe: FakeStripe | None = request.getfixturevalue("stripe_env") if rail == "stripe" else None
    world = worked_example(client, operator)  # X: 800 bps, Y: 1.00/unit, A/S split 70/30, fee 10 %
    orders = [
        ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2), email="ann@example.com")), 201),
        ok(checkout(client, "a-store", cart(world, ("Y-KIT", 1), email="bob@example.com")), 201),
        ok(checkout(client, "a-store", cart(world, ("X-PRO", 2), email="cy@example.com")), 201),
    ]
    if stripe is None:  # the manual rail: the operator records each bank transfer
        for order in orders:
            ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
        ok(client.post(f"/v1/orders/{orders[0]['id']}/mark-paid", headers=operator))  # twice: nothing changes
    else:  # Stripe: the buyer pays the PaymentIntent and the signed webhook marks the order paid
        events = [stripe.succeed_payment_intent(order["payment"]["payment_intent_id"]) for order in orders]
        for event in events:
            deliver_event(client, event)
        assert deliver_event(client, events[0])["status"] == "duplicate"  # a replay changes nothing

    # Order 2: 1250 -> fee 125, commission 100 (A 70, S 30), Y 1025.
    # Order 3: 9998 -> fee 1000, commission 800 (A 560, S 240), X 8198.
    assert balances(client, world) == {
        "X": (4099 + 8198, 0), "Y": (2050 + 1025, 0), "A": (420 + 70 + 560, 0), "S": (180 + 30 + 240, 0),
    }

    # Sellers see only their own sub-orders, with where to ship once paid (and no buyer email).
    y_subs = ok(client.get("/v1/sub-orders", headers=world.sellers["Y"].headers))["items"]
    assert len(y_subs) == 2 and all(s["ship_to"]["name"] == "Bea Buyer" for s in y_subs)
    assert "buyer_email" not in y_subs[0] and "ann@example.com" not in str(y_subs)
    x_sub = next(s for s in orders[0]["sub_orders"] if s["seller_id"] == world.sellers["X"].id)
    assert client.get(f"/v1/sub-orders/{x_sub['id']}", headers=world.sellers["Y"].headers).status_code == 404

    for order in orders:
        for sub in order["sub_orders"]:
            seller = "X" if sub["seller_id"] == world.sellers["X"].id else "Y"
            fulfil(client, world, seller, sub["id"])

    # A partial refund inside the window: one cable of order 1.
    y_line = next(line for line in orders[0]["lines"] if line["sku"] == "Y-KIT")
    y_sub = next(s for s in orders[0]["sub_orders"] if s["seller_id"] == world.sellers["Y"].id)
    ok(client.post(f"/v1/sub-orders/{y_sub['id']}/refunds", headers=world.sellers["Y"].headers,
                   json={"lines": [{"order_line_id": y_line["id"], "quantity": 1}], "reason": "damaged"}), 201)

    # Before the windows pass nothing becomes available.
    run_task("orders.release_matured")
    assert all(available == 0 for _, available in balances(client, world).values())

    clock.advance(timedelta(days=31))  # past the 14-day return window and the 30-day holding period
    assert run_task("orders.release_matured") == {"seller_shares": 4, "commissions": 8}
    assert balances(client, world) == {
        "X": (0, 4099 + 8198), "Y": (0, 2050 + 1025 - 1025), "A": (0, 420 + 70 + 560 - 70),
        "S": (0, 180 + 30 + 240 - 30),
    }
    platform = ok(client.get("/v1/platform/balances", headers=operator))[0]
    assert platform["fees"] == 750 + 125 + 1000 - 125
    assert platform["clearing"] == -(7499 + 1250 + 9998) + 1250
    # Everything the buyers paid and kept is owed to someone: payees + fees == money held.
    assert platform["payees_available"] + platform["fees"] == -platform["clearing"]
    audit_clean(env)
    commissions = ok(client.get("/v1/commissions", headers=world.affiliates["A"].headers))["items"]
    assert {c["status"] for c in commissions} == {"available"}
    if stripe is not None:  # the partial refund went back through Stripe, once
        assert [(r["amount"], r["payment_intent"]) for r in stripe.objects("refund")] == [
            (1250, orders[0]["payment"]["payment_intent_id"])]


def test_unpaid_order_expires_and_gives_its_stock_back(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 3))), 201)
    clock.advance(timedelta(minutes=59))
    assert run_task("orders.expire_unpaid") == 0
    clock.advance(timedelta(minutes=2))
    assert run_task("orders.expire_unpaid") == 1
    assert stock_of(env, world, "X-PRO") == 100
    paid = client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator)
    assert paid.status_code == 409
    audit_clean(env)


def test_seller_rejecting_its_part_refunds_it_and_restocks(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    y_sub = next(s for s in order["sub_orders"] if s["seller_id"] == world.sellers["Y"].id)
    rejected = ok(client.post(f"/v1/sub-orders/{y_sub['id']}/reject", headers=world.sellers["Y"].headers,
                              json={"reason": "out of cables"}))
    assert rejected["status"] == "rejected"
    assert rejected["refunded"]["amount"] == 2500
    assert balances(client, world)["Y"] == (0, 0)
    assert balances(client, world)["A"] == (280, 0)
    assert stock_of(env, world, "Y-KIT") == 100
    again = client.post(f"/v1/sub-orders/{y_sub['id']}/ship", headers=world.sellers["Y"].headers,
                        json={"tracking_number": "x"})
    assert again.status_code == 409
    audit_clean(env)


def test_cart_validation_errors_are_clear_and_write_nothing(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    world.product("X", "Unlisted", [("X-UNLISTED", "One", 1000, 5)])
    cases = {
        "unknown variant": cart(world, ("X-PRO", 1)) | {"items": [{"variant_id": str(uuid.uuid4()), "quantity": 1}]},
        "not listed": cart(world, ("X-UNLISTED", 1)),
        "zero quantity": cart(world, ("X-PRO", 1))
        | {"items": [{"variant_id": world.variants["X-PRO"], "quantity": 0}]},
        "bad email": cart(world, ("X-PRO", 1)) | {"buyer": {"email": "nope", "name": "B"}},
        "client price": cart(world, ("X-PRO", 1)) | {"items": [{"variant_id": world.variants["X-PRO"],
                                                                 "quantity": 1, "price": 1}]},
    }
    for name, body in cases.items():
        response = checkout(client, "a-store", body)
        assert response.status_code == 422, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert checkout(client, "no-such-store", cart(world, ("X-PRO", 1))).status_code == 404
    missing_key = client.post("/v1/storefronts/a-store/orders", json=cart(world, ("X-PRO", 1)))
    assert missing_key.status_code == 422
    with session_scope(env.runtime.sessions) as session:
        assert session.scalar(select(Order.id)) is None


def test_stripe_rail_payment_intent_webhook_replay_and_refund(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe
) -> None:
    world = worked_example(client, operator)
    key = "stripe-order-1"
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2)), key=key), 201)
    payment = order["payment"]
    assert payment["rail"] == "stripe" and payment["client_secret"]
    intents = stripe_env.objects("payment_intent")
    assert len(intents) == 1
    assert intents[0]["amount"] == 7499 and intents[0]["currency"] == "usd"
    assert intents[0]["transfer_group"] == order["id"]
    assert intents[0]["metadata"] == {"order_id": order["id"]}
    # A retried checkout returns the same order and creates no second PaymentIntent.
    again = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2)), key=key), 201)
    assert again["id"] == order["id"] and len(stripe_env.objects("payment_intent")) == 1

    event = stripe_env.succeed_payment_intent(payment["payment_intent_id"])
    deliver_event(client, event)
    assert deliver_event(client, event)["status"] == "duplicate"  # the same event id again
    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert full["status"] == "paid"
    assert balances(client, world)["X"] == (4099, 0)

    y_line = next(line for line in order["lines"] if line["sku"] == "Y-KIT")
    refund = ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator,
                            json={"lines": [{"order_line_id": y_line["id"], "quantity": 1}]}), 201)
    refunds = stripe_env.objects("refund")
    assert [(r["amount"], r["payment_intent"]) for r in refunds] == [(1250, payment["payment_intent_id"])]
    listed = ok(client.get(f"/v1/orders/{order['id']}/refunds", headers=operator))
    assert listed[0]["id"] == refund["id"] and listed[0]["status"] == "sent"
    audit_clean(env)


def test_a_refund_stripe_fails_later_is_marked_failed_with_the_reason_for_operators(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
    paid = stripe_env.succeed_payment_intent(order["payment"]["payment_intent_id"])
    deliver_event(client, paid)
    refund = ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json={"reason": "returned"}), 201)
    [stripe_refund] = stripe_env.objects("refund")

    failed = stripe_env.fail_refund(stripe_refund["id"], "expired_or_canceled_card")
    deliver_event(client, failed)

    listed = ok(client.get("/v1/refunds", params={"status": "failed"}, headers=operator))
    assert [(r["id"], r["status"], r["failure_reason"]) for r in listed] == [
        (refund["id"], "failed", "expired_or_canceled_card")]
    assert ok(client.get("/v1/refunds", params={"status": "sent"}, headers=operator)) == []
    assert client.get("/v1/refunds", headers=world.sellers["X"].headers).status_code == 403
    # The money is held again and owed to the buyer; everything held is still owed to someone.
    platform = ok(client.get("/v1/platform/balances", headers=operator))[0]
    assert platform["refunds_owed"] == 4999 and platform["clearing"] == -4999
    assert platform["refunds_owed"] + platform["fees"] + platform["payees_pending"] == -platform["clearing"]
    deliver_event(client, failed)  # a replayed event changes nothing
    audit_clean(env)

    settled = ok(client.post(f"/v1/refunds/{refund['id']}/settle", headers=operator,
                             json={"note": "bank transfer 2026-11-23"}))
    assert settled["status"] == "settled"
    assert ok(client.get("/v1/platform/balances", headers=operator))[0]["refunds_owed"] == 0
    assert client.post(f"/v1/refunds/{refund['id']}/settle", headers=operator,
                       json={"note": "again"}).status_code == 409
    audit_clean(env)


def test_a_payment_for_another_amount_than_the_order_is_refunded_and_the_order_cancelled(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
    intent = order["payment"]["payment_intent_id"]
    event = stripe_env.succeed_payment_intent(intent)
    event["data"]["object"]["amount_received"] = 4000  # e.g. an intent edited outside the platform

    deliver_event(client, event)

    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert full["status"] == "cancelled"  # nothing booked, and the stock is not held forever
    assert stock_of(env, world, "X-PRO") == 100
    assert [(r["amount"], r["payment_intent"]) for r in stripe_env.objects("refund")] == [(4000, intent)]
    deliver_event(client, event)  # a replay refunds nothing more
    assert len(stripe_env.objects("refund")) == 1
    audit_clean(env)


def test_a_second_payment_intent_for_a_paid_order_is_refunded_in_full(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
    deliver_event(client, stripe_env.succeed_payment_intent(order["payment"]["payment_intent_id"]))
    with stripe_env._lock:  # a second PaymentIntent for the same order, made outside the platform
        second = stripe_env.api.create_payment_intent(Ctx(), {
            "amount": "4999", "currency": "usd", "metadata": {"order_id": order["id"]}})

    deliver_event(client, stripe_env.succeed_payment_intent(second["id"]))

    assert ok(client.get(f"/v1/orders/{order['id']}", headers=operator))["status"] == "paid"
    assert [(r["amount"], r["payment_intent"]) for r in stripe_env.objects("refund")] == [(4999, second["id"])]
    audit_clean(env)


def test_failed_stripe_payment_releases_the_stock(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 4))), 201)
    event = stripe_env.fail_payment_intent(order["payment"]["payment_intent_id"])
    deliver_event(client, event)
    assert ok(client.get(f"/v1/orders/{order['id']}", headers=operator))["status"] == "cancelled"
    assert stock_of(env, world, "X-PRO") == 100
    # The PaymentIntent is cancelled at Stripe too: the buyer cannot pay the cancelled order later.
    assert stripe_env.object(order["payment"]["payment_intent_id"])["status"] == "canceled"


def test_a_payment_that_succeeds_after_the_order_was_cancelled_is_refunded_in_full(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 2))), 201)
    with session_scope(env.runtime.sessions) as session:  # expiry won the race against the buyer's card
        settlement.cancel_unpaid(session, uuid.UUID(order["id"]), reason="payment timeout")
    intent = order["payment"]["payment_intent_id"]

    event = stripe_env.succeed_payment_intent(intent)
    deliver_event(client, event)

    assert [(r["amount"], r["payment_intent"]) for r in stripe_env.objects("refund")] == [(9998, intent)]
    assert ok(client.get(f"/v1/orders/{order['id']}", headers=operator))["status"] == "cancelled"
    assert stock_of(env, world, "X-PRO") == 100
    with session_scope(env.runtime.sessions) as session:
        event_row = session.scalars(select(WebhookEvent)).one()
        assert event_row.handled_at is not None and event_row.last_error is None
    audit_clean(env)


def test_affiliate_and_seller_keys_cannot_read_operator_order_views(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
    for party in (world.sellers["X"], world.affiliates["A"]):
        assert client.get(f"/v1/orders/{order['id']}", headers=party.headers).status_code == 403
        assert client.post(f"/v1/orders/{order['id']}/mark-paid", headers=party.headers).status_code == 403
    assert client.get("/v1/sub-orders", headers=world.affiliates["A"].headers).status_code == 403
    affiliate_key = issue_key(env, __import__("kernel.auth", fromlist=["Role"]).Role.AFFILIATE, uuid.uuid4())
    assert ok(client.get("/v1/commissions", headers=bearer(affiliate_key)))["items"] == []
