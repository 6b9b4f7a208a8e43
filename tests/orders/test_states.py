"""The state machines of orders, sub-orders and commissions (orders.service.states): every move the tables
allow goes through, every other one raises, and the guarded set-based UPDATE moves only rows whose
status allows the move."""

from __future__ import annotations

import enum
import itertools
import uuid
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel.db import session_scope
from orders.errors import InvalidTransition
from orders.models import Commission, CommissionStatus, Order, OrderStatus, SubOrder, SubOrderStatus
from orders.service import states
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example

MACHINES: list[states.StateMachine[Any]] = [states.ORDERS, states.SUB_ORDERS, states.COMMISSIONS]
E = TypeVar("E", bound=enum.StrEnum)


def _states(machine: states.StateMachine[E]) -> set[E]:
    return set(machine.states)


def _every_pair(machine: states.StateMachine[E]) -> list[tuple[E, E]]:
    return list(itertools.product(machine.states, machine.states))


def test_every_status_has_a_row_in_its_table_and_only_known_targets() -> None:
    for machine in MACHINES:
        assert set(machine.transitions) == _states(machine), machine.noun
        for targets in machine.transitions.values():
            assert targets <= _states(machine)


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.noun)
def test_every_move_in_the_table_is_made_and_every_other_move_raises(machine: states.StateMachine[Any]) -> None:
    for current, new in _every_pair(machine):
        row = SimpleNamespace(id=uuid.uuid4(), status=current.value)
        if new in machine.transitions[current]:
            machine.move(row, new)
            assert row.status == new.value
        else:
            with pytest.raises(InvalidTransition, match=f"cannot go from {current} to {new}"):
                machine.move(row, new)
            assert row.status == current.value  # a refused move changes nothing


def test_the_commission_life_cycle_of_the_design_is_the_table() -> None:
    """pending (order paid) -> available after the holding period -> paid in a payout; a refund
    before it is available reverses it; a failed payout gives it back; an unpaid order cancels it."""
    c = CommissionStatus
    moves = {(a, b) for a, targets in states.COMMISSION_TRANSITIONS.items() for b in targets}
    assert moves == {
        (c.AWAITING_PAYMENT, c.PENDING), (c.AWAITING_PAYMENT, c.CANCELLED), (c.PENDING, c.AVAILABLE),
        (c.PENDING, c.REVERSED), (c.AVAILABLE, c.PAID), (c.PAID, c.AVAILABLE),
    }


def test_a_sellers_fulfilment_actions_are_moves_the_sub_order_table_allows() -> None:
    from orders.service.fulfilment import TRANSITIONS

    targets = {"accept": SubOrderStatus.ACCEPTED, "ship": SubOrderStatus.SHIPPED, "deliver": SubOrderStatus.DELIVERED}
    for action, sources in TRANSITIONS.items():
        for source in sources:
            assert targets[action] in states.SUB_ORDER_TRANSITIONS[source], (action, source)


def test_a_set_based_move_from_a_status_the_table_does_not_allow_is_refused_before_any_sql() -> None:
    with pytest.raises(InvalidTransition, match="cannot go from pending to paid"):
        states.COMMISSIONS.move_all(None, CommissionStatus.PAID, from_=CommissionStatus.PENDING)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransition, match="no order can move to awaiting_approval"):
        states.ORDERS.move_all(None, OrderStatus.AWAITING_APPROVAL)  # type: ignore[arg-type]


def test_the_guarded_update_moves_only_rows_whose_status_allows_it_and_counts_the_rest(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    """An unpaid order's commissions cannot be claimed by a payout (available -> paid): the guarded
    UPDATE matches none of them, and with `expected` the shortfall raises."""
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 1))), 201)
    order_id = uuid.UUID(order["id"])
    with session_scope(env.runtime.sessions) as session:
        ids = list(session.scalars(select(Commission.id).where(Commission.order_id == order_id)))
        assert states.COMMISSIONS.move_all(session, CommissionStatus.PAID, Commission.id.in_(ids)) == 0
        with pytest.raises(InvalidTransition, match=f"{len(ids)} of {len(ids)} commissions could not move to paid"):
            states.COMMISSIONS.move_all(session, CommissionStatus.PAID, Commission.id.in_(ids), expected=len(ids))
        session.rollback()
    ok(client.post(f"/v1/orders/{order_id}/mark-paid", headers=operator))
    with session_scope(env.runtime.sessions) as session:
        assert set(session.scalars(select(Commission.status).where(Commission.order_id == order_id))) == {"pending"}
        assert set(session.scalars(select(SubOrder.status).where(SubOrder.order_id == order_id))) == {"paid"}
        assert session.scalar(select(Order.status).where(Order.id == order_id)) == "paid"

