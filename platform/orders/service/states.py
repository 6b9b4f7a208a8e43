"""The state machines of order routing: orders, sub-orders and commissions. Every status change
of these rows goes through this module (`move` for a loaded row, `move_all` for a set-based
UPDATE), so the allowed moves are written once, here, and anything else raises
`InvalidTransition` (409) instead of silently writing a state the money rules do not expect.
Payout items have their own machine (`payouts.service.states`).

Orders (`ORDER_TRANSITIONS`):

    awaiting_payment -> paid        the buyer's payment is recorded (settlement.mark_paid)
    awaiting_payment -> cancelled   payment failed or the order expired unpaid (settlement.cancel_unpaid)

Sub-orders, one seller's part (`SUB_ORDER_TRANSITIONS`):

    awaiting_payment -> paid | cancelled             with their order
    paid             -> accepted | shipped           the seller (orders.service.fulfilment)
    paid             -> delivered                    nothing to ship: delivered when paid
    accepted         -> shipped | delivered          the seller
    shipped          -> delivered                    the seller
    paid | accepted  -> rejected                     the seller refuses it; its part is refunded

    Refunds leave a sub-order's status alone (they may be partial); a fully refunded one cannot
    be shipped (fulfilment checks its lines).

Commissions, one affiliate's share of one line (`COMMISSION_TRANSITIONS`):

    awaiting_payment -> pending      the order is paid: the share is booked `pending` (journal: order.paid)
    awaiting_payment -> cancelled    the order was never paid; nothing was booked
    pending          -> available    the holding period passed (settlement.release_matured;
                                     journal: commission.available)
    pending          -> reversed     refunds took back all of it while pending (orders.service.refunds)
    available        -> paid         a payout froze the affiliate's balance and claimed it
                                     (payouts.service.journal.claim_all; journal: payout.freeze)
    paid             -> available    that payout failed: the claim is given back and the next
                                     payout covers it (payouts.service.journal.release_claims)

    A refund after `available` or `paid` keeps the status (the reversal debits `available`,
    which may go negative; payouts/service/recoveries.py takes it back from a paid transfer). `reversed`
    and `cancelled` are final: the journal holds nothing more for them.

Why the guarded set-based UPDATE (`move_all`): settlement moves all of an order's sub-orders and
commissions at once, and a payout claims thousands of commissions in one statement. The UPDATE
it builds only matches rows whose status may move to the new one (`WHERE status IN (...)`,
from the table), so a row in any other state is left alone and counted: with `expected`, a
shortfall raises. Settlement's UPDATEs also take the row locks of sub-orders before commissions,
the global lock order (kernel.locking).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from orders.errors import InvalidTransition
from orders.models import Commission, CommissionStatus, Order, OrderStatus, SubOrder, SubOrderStatus

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.AWAITING_APPROVAL: frozenset({OrderStatus.AWAITING_PAYMENT, OrderStatus.CANCELLED}),
    OrderStatus.AWAITING_PAYMENT: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

SUB_ORDER_TRANSITIONS: dict[SubOrderStatus, frozenset[SubOrderStatus]] = {
    SubOrderStatus.AWAITING_PAYMENT: frozenset({SubOrderStatus.PAID, SubOrderStatus.CANCELLED}),
    SubOrderStatus.PAID: frozenset({
        SubOrderStatus.ACCEPTED, SubOrderStatus.SHIPPED, SubOrderStatus.DELIVERED, SubOrderStatus.REJECTED,
    }),
    SubOrderStatus.ACCEPTED: frozenset({SubOrderStatus.SHIPPED, SubOrderStatus.DELIVERED, SubOrderStatus.REJECTED}),
    SubOrderStatus.SHIPPED: frozenset({SubOrderStatus.DELIVERED}),
    SubOrderStatus.DELIVERED: frozenset(),
    SubOrderStatus.REJECTED: frozenset(),
    SubOrderStatus.CANCELLED: frozenset(),
}

COMMISSION_TRANSITIONS: dict[CommissionStatus, frozenset[CommissionStatus]] = {
    CommissionStatus.AWAITING_PAYMENT: frozenset({CommissionStatus.PENDING, CommissionStatus.CANCELLED}),
    CommissionStatus.PENDING: frozenset({CommissionStatus.AVAILABLE, CommissionStatus.REVERSED}),
    CommissionStatus.AVAILABLE: frozenset({CommissionStatus.PAID}),
    CommissionStatus.PAID: frozenset({CommissionStatus.AVAILABLE}),
    CommissionStatus.REVERSED: frozenset(),
    CommissionStatus.CANCELLED: frozenset(),
}

E = TypeVar("E", bound=enum.StrEnum)


@dataclass(frozen=True)
class StateMachine(Generic[E]):
    """One table's status column and the moves it allows."""

    noun: str  # for messages: "order", "sub-order", "commission"
    model: Any  # the mapped class; its `status` column holds `E` values
    states: type[E]
    transitions: Mapping[E, frozenset[E]]

    def allowed(self, current: str, new: E) -> bool:
        return new in self.transitions[self.states(current)]

    def sources(self, new: E) -> tuple[str, ...]:
        """Every status that may move to `new`."""
        return tuple(s.value for s, targets in self.transitions.items() if new in targets)

    def check(self, row: Any, new: E) -> None:
        if not self.allowed(row.status, new):
            targets = ", ".join(sorted(self.transitions[self.states(row.status)])) or "nothing: it is final"
            raise InvalidTransition(
                f"{self.noun} {row.id} cannot go from {row.status} to {new} (from {row.status}: {targets})"
            )

    def move(self, row: Any, new: E) -> None:
        """Move one loaded row to `new`; refuse any move the table does not allow."""
        self.check(row, new)
        row.status = new.value

    def move_all(
        self, session: Session, new: E, *where: ColumnElement[bool], from_: E | None = None,
        expected: int | None = None, values: Mapping[str, Any] | None = None, synchronize: bool = True,
    ) -> int:
        """One guarded UPDATE: the rows matching `where` whose status may move to `new` (from the
        table; only `from_`, if given, and that move must be in the table) get `new` (and
        `values`). Returns how many moved; with `expected`, fewer (a row in a state that cannot
        move to `new`) raises InvalidTransition and the caller's transaction must roll back.
        `synchronize`: also update rows of the table loaded in the session (False for claims of
        many rows that are not loaded)."""
        if from_ is not None and new not in self.transitions[from_]:
            raise InvalidTransition(f"a {self.noun} cannot go from {from_} to {new}")
        sources = (from_.value,) if from_ is not None else self.sources(new)
        if not sources:
            raise InvalidTransition(f"no {self.noun} can move to {new}")
        if expected == 0:
            return 0  # nothing to move (an order without commissions): no statement
        stmt = (
            update(self.model).where(*where, self.model.status.in_(sources))
            .values(status=new.value, **(values or {}))
            .execution_options(synchronize_session="evaluate" if synchronize else False)
        )
        moved = int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
        if expected is not None and moved != expected:
            raise InvalidTransition(
                f"{expected - moved} of {expected} {self.noun}s could not move to {new} "
                f"(only from {', '.join(sources)})"
            )
        return moved


ORDERS: StateMachine[OrderStatus] = StateMachine("order", Order, OrderStatus, ORDER_TRANSITIONS)
SUB_ORDERS: StateMachine[SubOrderStatus] = StateMachine("sub-order", SubOrder, SubOrderStatus, SUB_ORDER_TRANSITIONS)
COMMISSIONS: StateMachine[CommissionStatus] = StateMachine(
    "commission", Commission, CommissionStatus, COMMISSION_TRANSITIONS
)


def move_order(order: Order, new: OrderStatus) -> None:
    ORDERS.move(order, new)


def move_sub_order(sub: SubOrder, new: SubOrderStatus) -> None:
    SUB_ORDERS.move(sub, new)


def move_commission(commission: Commission, new: CommissionStatus) -> None:
    COMMISSIONS.move(commission, new)
