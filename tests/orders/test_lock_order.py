"""Every order-routing path that locks rows takes its locks in the global lock order
(kernel.locking), on real PostgreSQL: checkout (through the HTTP API only: it is observed, not
driven), payment by the operator and by Stripe's webhook, fulfilment, partial, full and seller
refunds, a seller's rejection, the release job, cancellation and expiry of unpaid orders, and
catalog stock changes. A recorder reads the SQL of every transaction and lists each lock taken
below one already held."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from kernel.clock import clock
from kernel.locking import LockRecorder
from tests.conftest import Backend
from tests.fake_stripe import FakeStripe
from tests.orders.test_story import deliver_event, fulfil, run_task
from tests.orders.world import cart, checkout, ok, worked_example

pytestmark = pytest.mark.postgres_only


def _no_violation(recorder: LockRecorder, *tables: str) -> None:
    assert recorder.violations() == []
    assert set(tables) <= recorder.tables_locked(), recorder.tables_locked()  # the paths ran


def test_checkout_payment_fulfilment_refunds_rejection_and_the_release_job_lock_rows_in_the_global_order(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    with LockRecorder() as recorder:
        first = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)
        second = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 1))), 201)
        third = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 1))), 201)
        for order in (first, second, third):
            ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
        for sub in first["sub_orders"]:
            fulfil(client, world, "X" if sub["seller_id"] == world.sellers["X"].id else "Y", sub["id"])
        cable = next(line for line in first["lines"] if line["sku"] == "Y-KIT")
        ok(client.post(f"/v1/orders/{first['id']}/refunds", headers=operator,  # partial: one cable of two
                       json={"lines": [{"order_line_id": cable["id"], "quantity": 1}], "reason": "damaged"}), 201)
        ok(client.post(f"/v1/orders/{second['id']}/refunds", headers=operator, json={"reason": "returned"}), 201)
        y_sub = next(s for s in third["sub_orders"] if s["seller_id"] == world.sellers["Y"].id)
        ok(client.post(f"/v1/sub-orders/{y_sub['id']}/reject", headers=world.sellers["Y"].headers,
                       json={"reason": "out of cables"}))
        clock.advance(timedelta(days=31))
        assert run_task("orders.release_matured") == {"seller_shares": 2, "commissions": 4}
    _no_violation(recorder, "variants", "idempotency_keys", "orders", "sub_orders", "commissions", "order_lines")


def test_unpaid_orders_cancelled_by_expiry_and_stock_changes_lock_rows_in_the_global_order(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    seller = world.sellers["X"].headers
    with LockRecorder() as recorder:
        ok(checkout(client, "a-store", cart(world, ("X-PRO", 2), ("Y-KIT", 1))), 201)
        ok(client.post(f"/v1/products/{world.products['X-PRO']}/variants/{world.variants['X-PRO']}/stock",
                       headers=seller, json={"delta": 5}))
        ok(client.post(f"/v1/products/{world.products['X-PRO']}/variants/{world.variants['X-PRO']}/stock",
                       headers=seller, json={"set": 50}))
        clock.advance(timedelta(hours=2))
        assert run_task("orders.expire_unpaid") == 1
    _no_violation(recorder, "products", "variants", "orders", "sub_orders", "commissions", "affiliate_monthly_sales")


def test_stripe_payment_failure_and_success_webhooks_and_a_stripe_refund_lock_rows_in_the_global_order(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe
) -> None:
    world = worked_example(client, operator)
    with LockRecorder() as recorder:
        failed = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)
        deliver_event(client, stripe_env.fail_payment_intent(failed["payment"]["payment_intent_id"]))
        paid = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 1))), 201)
        deliver_event(client, stripe_env.succeed_payment_intent(paid["payment"]["payment_intent_id"]))
        ok(client.post(f"/v1/orders/{paid['id']}/refunds", headers=operator, json={"reason": "returned"}), 201)
    _no_violation(recorder, "webhook_events", "orders", "sub_orders", "commissions", "refunds")
