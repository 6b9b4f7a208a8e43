"""The checkout creates its Stripe PaymentIntent outside any database transaction: while Stripe
answers, nothing holds the order's row (or, on SQLite, the database's write lock), so a slow
Stripe cannot make payment webhooks, expiry or refunds wait. Then it stores the PaymentIntent's id,
once, whoever retries."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from kernel.db import sqlite_path
from tests.conftest import Backend
from tests.fake_stripe.server import FakeStripe
from tests.orders.world import cart, checkout, ok, worked_example


def _nothing_holds_the_order(env: Backend, order_id: str) -> bool:
    """From another connection: may a writer take the order's row (PostgreSQL) or the database's
    write lock (SQLite) right now, without waiting?"""
    if env.is_postgres:
        with env.runtime.engine.connect() as conn:
            try:
                conn.execute(text("SELECT 1 FROM orders WHERE id = :id FOR UPDATE NOWAIT"), {"id": order_id})
            except OperationalError:  # lock_not_available
                return False
            finally:
                conn.rollback()
        return True
    path = sqlite_path(env.settings.database_url)
    assert path is not None
    raw = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:  # database is locked
        return False
    finally:
        raw.close()


def test_checkout_creates_the_payment_intent_while_no_transaction_holds_the_order(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = worked_example(client, operator)
    rail = env.runtime.rail
    create_payment = rail.create_payment
    free_while_creating: list[bool] = []

    def watched(**kwargs: Any) -> Any:
        free_while_creating.append(_nothing_holds_the_order(env, kwargs["metadata"]["order_id"]))
        return create_payment(**kwargs)

    monkeypatch.setattr(rail, "create_payment", watched)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1)), key="payment-1"), 201)
    assert free_while_creating == [True]
    [intent] = stripe_env.objects("payment_intent")
    assert order["payment"]["payment_intent_id"] == intent["id"] and order["payment"]["client_secret"]
    # Stored once: the retry answers with it and asks Stripe for nothing.
    again = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1)), key="payment-1"), 201)
    assert again["payment"] == order["payment"] and free_while_creating == [True]


def test_a_payment_intent_stripe_failed_to_create_is_created_and_stored_by_the_retry(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe,
) -> None:
    world = worked_example(client, operator)
    stripe_env.fail_next("/v1/payment_intents", "500", count=3, method="POST")  # beyond the client's retries
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1)), key="payment-2"), 201)
    assert order["payment"]["payment_intent_id"] is None and "retry" in order["payment"]["instructions"]
    again = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1)), key="payment-2"), 201)
    [intent] = stripe_env.objects("payment_intent")
    assert again["id"] == order["id"] and again["payment"]["payment_intent_id"] == intent["id"]
    full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    assert full["payment"]["payment_intent_id"] == intent["id"]
