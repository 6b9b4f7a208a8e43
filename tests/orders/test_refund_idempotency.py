"""Refunds take an Idempotency-Key: a client that retries after a timeout gets the refund it
made back instead of refunding the buyer again."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel.db import session_scope
from marketplace.bootstrap import audit_ledger
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


def _paid_order(client: TestClient, operator: dict[str, str]) -> tuple[Any, dict[str, Any]]:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 3))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    return world, order


def test_a_retried_refund_with_the_same_key_returns_the_first_refund_and_refunds_once(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world, order = _paid_order(client, operator)
    body = {"lines": [{"order_line_id": order["lines"][0]["id"], "quantity": 1}], "reason": "one broken"}
    key = {"Idempotency-Key": "refund-attempt-0001"}

    first = client.post(f"/v1/orders/{order['id']}/refunds", headers={**operator, **key}, json=body)
    retry = client.post(f"/v1/orders/{order['id']}/refunds", headers={**operator, **key}, json=body)
    seller = client.post(f"/v1/sub-orders/{order['sub_orders'][0]['id']}/refunds",  # a seller's own key
                         headers={**world.sellers["Y"].headers, "Idempotency-Key": "seller-attempt-01"}, json=body)
    seller_retry = client.post(f"/v1/sub-orders/{order['sub_orders'][0]['id']}/refunds",
                               headers={**world.sellers["Y"].headers, "Idempotency-Key": "seller-attempt-01"},
                               json=body)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in first.headers and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert seller_retry.json() == seller.json() and seller_retry.headers["Idempotent-Replayed"] == "true"
    assert ok(client.get(f"/v1/orders/{order['id']}", headers=operator))["refunded"]["amount"] == 2 * 1250
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


def test_the_same_refund_key_with_a_different_request_is_a_409_and_refunds_nothing(
    client: TestClient, operator: dict[str, str]
) -> None:
    _, order = _paid_order(client, operator)
    line = order["lines"][0]["id"]
    key = {**operator, "Idempotency-Key": "refund-attempt-0002"}
    ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=key,
                   json={"lines": [{"order_line_id": line, "quantity": 1}], "reason": "one"}), 201)

    reused = client.post(f"/v1/orders/{order['id']}/refunds", headers=key,
                         json={"lines": [{"order_line_id": line, "quantity": 2}], "reason": "two"})

    assert reused.status_code == 409 and reused.json()["type"].endswith("/idempotency-key-reused")
    assert ok(client.get(f"/v1/orders/{order['id']}", headers=operator))["refunded"]["amount"] == 1250


@pytest.mark.postgres_only
def test_two_refunds_sent_at_once_with_one_key_make_one_refund(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    _, order = _paid_order(client, operator)
    body = {"lines": [{"order_line_id": order["lines"][0]["id"], "quantity": 1}], "reason": "double click"}
    headers = {**operator, "Idempotency-Key": "refund-attempt-0003"}
    answers: list[Any] = []
    start = threading.Barrier(2)

    def send() -> None:
        start.wait()
        answers.append(client.post(f"/v1/orders/{order['id']}/refunds", headers=headers, json=body))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(a.status_code for a in answers) == [201, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert ok(client.get(f"/v1/orders/{order['id']}", headers=operator))["refunded"]["amount"] == 1250
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []
