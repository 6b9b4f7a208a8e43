"""Oversell and duplicate orders, tried for real: concurrent requests to a live server on
PostgreSQL (SQLite serialises writers, so it would hide these bugs)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kernel.db import session_scope
from marketplace.bootstrap import audit_ledger
from orders.models import IdempotencyKey, Order, OrderLine, SubOrder
from tests.conftest import Backend
from tests.orders.world import cart, ok, stock_of, worked_example


@pytest.mark.postgres_only
def test_fifty_concurrent_checkouts_for_the_last_ten_units_sell_exactly_ten(
    client: TestClient, operator: dict[str, str], env: Backend, live_server: str
) -> None:
    world = worked_example(client, operator)
    world.product("X", "Limited Run", [("X-LTD", "Numbered", 2500, 10)])
    ok(client.post("/v1/storefronts/a-store/listings", headers=world.affiliates["A"].headers,
                   json={"product_id": world.products["X-LTD"]}), 201)

    def attempt(i: int) -> httpx.Response:
        with httpx.Client(timeout=60) as http:
            return http.post(f"{live_server}/v1/storefronts/a-store/orders",
                             json=cart(world, ("X-LTD", 1), ("Y-KIT", 1), email=f"b{i}@example.com"),
                             headers={"Idempotency-Key": f"last-ten-{i}"})

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(attempt, range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10 + [409] * 40, statuses
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/out-of-stock")

    assert stock_of(env, world, "X-LTD") == 0
    # The Y-KIT line of the 40 refused carts was rolled back with the rest: nothing half-written.
    assert stock_of(env, world, "Y-KIT") == 90
    with session_scope(env.runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 10
        assert session.scalar(select(func.count()).select_from(SubOrder)) == 20
        assert session.scalar(select(func.count()).select_from(OrderLine)) == 20
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 10
        assert audit_ledger(session) == []


@pytest.mark.postgres_only
def test_twenty_concurrent_requests_with_one_idempotency_key_make_one_order(
    client: TestClient, operator: dict[str, str], env: Backend, live_server: str
) -> None:
    world = worked_example(client, operator)
    body = cart(world, ("X-PRO", 1), ("Y-KIT", 2))

    def attempt(_: int) -> httpx.Response:
        with httpx.Client(timeout=60) as http:
            return http.post(f"{live_server}/v1/storefronts/a-store/orders", json=body,
                             headers={"Idempotency-Key": "one-order-please"})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(attempt, range(20)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    with session_scope(env.runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert stock_of(env, world, "X-PRO") == 99


def test_same_idempotency_key_with_a_different_cart_is_refused_and_writes_nothing(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    headers = {"Idempotency-Key": "reused-key-123"}
    first = client.post("/v1/storefronts/a-store/orders", json=cart(world, ("X-PRO", 1)), headers=headers)
    assert first.status_code == 201
    again = client.post("/v1/storefronts/a-store/orders", json=cart(world, ("X-PRO", 1)), headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    other = client.post("/v1/storefronts/a-store/orders", json=cart(world, ("X-PRO", 2)), headers=headers)
    assert other.status_code == 409
    assert other.json()["type"].endswith("/idempotency-key-reused")
    with session_scope(env.runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert stock_of(env, world, "X-PRO") == 99
