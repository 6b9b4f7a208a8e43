"""Races between writers of one order, made repeatable: a hook commits the competing request (its
own session) at the exact point where two concurrent requests can interleave, then the request
under test goes on. Each of these failed before the fix (the review that found them is in the
session notes of issue 5)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import Response
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel import ledger
from kernel.auth import Principal, Role
from kernel.clock import clock
from kernel.db import session_scope
from kernel.ledger import AFFILIATE, AVAILABLE, PENDING, SELLER, Posting
from marketplace.bootstrap import audit_ledger
from orders import api
from orders.errors import RefundInvalid
from orders.models import Order, OrderLine, Refund, SubOrder
from orders.schemas import RefundIn
from orders.service import fulfilment, queries, refunds, settlement
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, stock_of, worked_example

pytestmark = pytest.mark.postgres_only


def _after_order_read(monkeypatch: pytest.MonkeyPatch, env: Backend, competitor: Callable[[Session, Any], Any]) -> None:
    """The route's first read of the order (before it takes the row lock) returns, then the
    competitor commits in its own session."""
    real_get = queries.get_order
    fired: list[bool] = []

    def get_then_competitor_commits(session: Session, order_id: uuid.UUID) -> Order:
        order = real_get(session, order_id)
        if not fired:
            fired.append(True)
            with session_scope(env.runtime.sessions) as other:
                competitor(other, order_id)
        return order

    monkeypatch.setattr(queries, "get_order", get_then_competitor_commits)


def test_a_seller_refund_racing_an_operator_refund_cannot_refund_the_same_unit_twice(
    client: TestClient, operator: dict[str, str], env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 1))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    sub_id, line_id = uuid.UUID(order["sub_orders"][0]["id"]), order["lines"][0]["id"]
    seller = Principal(uuid.uuid4(), Role.SELLER, uuid.UUID(world.sellers["Y"].id))
    real_get = fulfilment.get_sub_order

    def read_then_operator_refund_commits(*args: Any, **kwargs: Any) -> Any:
        sub = real_get(*args, **kwargs)  # the sub-order, its lines and commissions are loaded now
        ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json={"reason": "operator"}), 201)
        return sub

    monkeypatch.setattr(fulfilment, "get_sub_order", read_then_operator_refund_commits)
    with pytest.raises(RefundInvalid, match="0 unit"), session_scope(env.runtime.sessions) as session:
        api.refund_sub_order(sub_id, RefundIn.model_validate(
            {"lines": [{"order_line_id": line_id, "quantity": 1}], "reason": "seller"}), session, seller, Response())

    with session_scope(env.runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(Refund)) == 1
        assert session.execute(select(Order.total_amount, Order.refunded_amount)).one() == (1250, 1250)
        assert session.get(OrderLine, uuid.UUID(line_id)).refunded_quantity == 1  # type: ignore[union-attr]
        assert audit_ledger(session) == []


def test_mark_paid_after_expiry_cancelled_the_order_is_refused_and_keeps_it_cancelled(
    client: TestClient, operator: dict[str, str], env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 2))), 201)
    _after_order_read(monkeypatch, env, lambda s, oid: settlement.cancel_unpaid(s, oid, reason="payment timeout"))

    answer = client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator)

    assert answer.status_code == 409, answer.text
    monkeypatch.undo()
    assert ok(client.get(f"/v1/orders/{order['id']}", headers=operator))["status"] == "cancelled"
    assert stock_of(env, world, "Y-KIT") == 100  # given back once, not sold again
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


def test_two_mark_paid_calls_at_once_pay_once_and_both_answer_200(
    client: TestClient, operator: dict[str, str], env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 2))), 201)
    _after_order_read(monkeypatch, env, lambda s, oid: settlement.mark_paid(s, env.settings, oid))

    answer = client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator)

    assert answer.status_code == 200, answer.text
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


def test_a_refund_racing_the_release_job_debits_the_account_the_share_is_in(
    client: TestClient, operator: dict[str, str], env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    sub_id, y = order["sub_orders"][0]["id"], world.sellers["Y"]
    for step in ("accept", "deliver"):
        ok(client.post(f"/v1/sub-orders/{sub_id}/{step}", headers=y.headers))
    clock.advance(timedelta(days=31))  # past the return window and the 30-day holding period
    real_lock = settlement.lock_order  # what refunds imported; the patch below replaces refunds' name only

    def lock_then_release_job_commits(session: Session, order_id: uuid.UUID) -> Order:
        locked = real_lock(session, order_id)
        with session_scope(env.runtime.sessions) as job:
            settlement.release_matured(job)
        return locked

    monkeypatch.setattr(refunds, "lock_order", lock_then_release_job_commits)
    ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator, json={
        "lines": [{"order_line_id": order["lines"][0]["id"], "quantity": 1}], "reason": "one back"}), 201)
    monkeypatch.undo()
    with session_scope(job := env.runtime.sessions) as session:
        settlement.release_matured(session)  # whatever the race made the job skip
    with session_scope(job) as session:
        y_id, a_id = uuid.UUID(y.id), uuid.UUID(world.affiliates["A"].id)
        balances = {
            "Y pending": ledger.balance_of(session, SELLER, y_id, PENDING, "USD"),
            "Y available": ledger.balance_of(session, SELLER, y_id, AVAILABLE, "USD"),
            "A pending": ledger.balance_of(session, AFFILIATE, a_id, PENDING, "USD"),
            "A available": ledger.balance_of(session, AFFILIATE, a_id, AVAILABLE, "USD"),
        }
        assert audit_ledger(session) == []
    # Y-KIT x2 = 2500: fee 250, commission 200 (A 140, S 60), Y 2050; one unit back: Y 1025, A 70.
    assert balances == {"Y pending": 0, "Y available": 1025, "A pending": 0, "A available": 70}


def test_the_audit_names_a_share_left_in_pending_after_its_release(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    sub_id = order["sub_orders"][0]["id"]
    for step in ("accept", "deliver"):
        ok(client.post(f"/v1/sub-orders/{sub_id}/{step}", headers=world.sellers["Y"].headers))
    clock.advance(timedelta(days=31))
    with session_scope(env.runtime.sessions) as session:
        settlement.release_matured(session)
    with session_scope(env.runtime.sessions) as session:  # what the race used to do: debit pending
        sub = session.get(SubOrder, uuid.UUID(sub_id))
        assert sub is not None
        ledger.post(session, kind="test.misposted", reference_type="sub_order", reference_id=sub.id, currency="USD",
                    order_id=sub.order_id, memo="a refund debiting the wrong account", postings=[
                        Posting(SELLER, sub.seller_id, PENDING, -1, "sub_order", sub.id),
                        Posting(SELLER, sub.seller_id, AVAILABLE, 1, "sub_order", sub.id)])
    with session_scope(env.runtime.sessions) as session:
        findings = audit_ledger(session)

    assert [f.check for f in findings] == ["shares_sit_in_their_account"]
    assert f"sub-order {sub_id} (released: True): pending holds -1, expected 0" in findings[0].detail
