"""Read side of the order domain: lists with cursor pages, balances."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, distinct, select
from sqlalchemy.orm import Session, lazyload

from affiliates.models import Storefront
from affiliates.service.commission import new_to_buyer
from kernel import ledger
from kernel.auth import Principal, Role
from kernel.ledger import AVAILABLE, CLEARING, FEES, IN_TRANSIT, PAID_OUT, PENDING, PLATFORM, REFUNDS_OWED
from kernel.pgsql import aggregated_ids, collect_ids, in_list, precompile, run_built
from orders.errors import OrderNotFound
from orders.models import Commission, Order, OrderStatus, Refund, SubOrder
from orders.schemas import BalanceOut, BalancesOut, PlatformBalanceOut
from orders.service import invoices

# A buyer's live orders (for the first-order rule): awaiting approval, unpaid or paid, not cancelled.
ACTIVE_ORDER_STATES = (OrderStatus.AWAITING_APPROVAL.value, OrderStatus.AWAITING_PAYMENT.value, OrderStatus.PAID.value)


def list_orders(
    session: Session, *, status: str | None, after: uuid.UUID | None, limit: int
) -> list[Order]:
    stmt = select(Order).order_by(Order.id.desc()).limit(limit + 1)
    if status:
        stmt = stmt.where(Order.status == status)
    if after is not None:
        stmt = stmt.where(Order.id < after)
    return list(session.scalars(stmt))


def get_order(session: Session, order_id: uuid.UUID) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(f"no order {order_id}")
    return order


def list_sub_orders(
    session: Session, principal: Principal, *, status: str | None, after: uuid.UUID | None, limit: int
) -> list[SubOrder]:
    stmt = select(SubOrder).order_by(SubOrder.id.desc()).limit(limit + 1)
    if not principal.is_operator:
        stmt = stmt.where(SubOrder.seller_id == principal.subject_id)
    if status:
        stmt = stmt.where(SubOrder.status == status)
    if after is not None:
        stmt = stmt.where(SubOrder.id < after)
    return list(session.scalars(stmt))


def orders_by_id(session: Session, order_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Order]:
    """The orders of `order_ids` in one statement, without their lines, sub-orders and commissions
    (a page of sub-orders shows only each order's buyer name and address)."""
    ids = set(order_ids)
    if not ids:
        return {}
    return {o.id: o for o in session.scalars(select(Order).where(Order.id.in_(ids)).options(lazyload("*")))}


def list_commissions(
    session: Session, principal: Principal, *, status: str | None, after: uuid.UUID | None, limit: int
) -> list[Commission]:
    stmt = select(Commission).order_by(Commission.id.desc()).limit(limit + 1)
    if principal.role is Role.AFFILIATE:
        stmt = stmt.where(Commission.affiliate_id == principal.subject_id)
    elif principal.role is Role.SELLER:
        stmt = stmt.where(Commission.seller_id == principal.subject_id)
    if status:
        stmt = stmt.where(Commission.status == status)
    if after is not None:
        stmt = stmt.where(Commission.id < after)
    return list(session.scalars(stmt))


def list_refunds(session: Session, order_id: uuid.UUID) -> list[Refund]:
    return list(session.scalars(select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)))


def refunds_by_status(session: Session, status: str | None, limit: int) -> list[Refund]:
    stmt = select(Refund).order_by(Refund.created_at.desc(), Refund.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Refund.status == status)
    return list(session.scalars(stmt))


def payee_balances(session: Session, owner_type: str, owner_id: uuid.UUID) -> BalancesOut:
    by_currency: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for bal in ledger.balances(session, owner_type=owner_type, owner_id=owner_id):
        by_currency[bal.currency][bal.purpose] += bal.amount
    return BalancesOut(
        owner_type=owner_type, owner_id=owner_id,
        balances=[
            BalanceOut(currency=currency, pending=parts[PENDING], available=parts[AVAILABLE],
                       in_transit=parts[IN_TRANSIT])
            for currency, parts in sorted(by_currency.items())
        ],
    )


def platform_balances(session: Session) -> list[PlatformBalanceOut]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for bal in ledger.balances(session):
        parts = totals[bal.currency]
        if bal.owner_type == PLATFORM:
            parts[bal.purpose] += bal.amount
        elif bal.owner_type == invoices.BUYER_ORG:
            parts[invoices.RECEIVABLE] += bal.amount
        else:
            parts[f"payees_{bal.purpose}"] += bal.amount
    return [
        PlatformBalanceOut(
            currency=currency, fees=parts[FEES], clearing=parts[CLEARING], payees_pending=parts["payees_pending"],
            payees_available=parts["payees_available"], payees_in_transit=parts["payees_in_transit"],
            paid_out=parts[PAID_OUT], refunds_owed=parts[REFUNDS_OWED],
            receivable=parts[invoices.RECEIVABLE], invoiced=parts[invoices.INVOICED],
        )
        for currency, parts in sorted(totals.items())
    ]


def storefront_ids_of(session: Session, affiliate_id: uuid.UUID | None) -> set[uuid.UUID]:
    return set(session.scalars(select(Storefront.id).where(Storefront.affiliate_id == affiliate_id)))


def buyer_sellers(postgres: bool, narrowed: bool = False) -> Any:
    """SELECT the sellers the buyer (`:buyer_email`) has live orders with (`:states`), as ONE
    aggregated value (`kernel.pgsql.aggregated_ids` reads it), among `:seller_ids` if
    `narrowed`. The checkout's key lookup embeds it (orders.service.idempotency)."""
    stmt = (
        select(collect_ids(postgres)(distinct(SubOrder.seller_id)))
        .join(Order, Order.id == SubOrder.order_id)
        .where(Order.buyer_email == bindparam("buyer_email"), in_list(Order.status, "states", postgres))
    )
    return stmt.where(in_list(SubOrder.seller_id, "seller_ids", postgres)) if narrowed else stmt


@lru_cache(maxsize=2)
def _buyer_sellers_stmt(postgres: bool) -> Any:
    stmt = buyer_sellers(postgres, narrowed=True)
    return precompile(stmt) if postgres else stmt


def sellers_new_to_buyer(session: Session, seller_ids: frozenset[uuid.UUID], buyer_email: str) -> set[uuid.UUID]:
    """The sellers this buyer has no earlier (unpaid or paid) order with: one SELECT. The
    commission preview's first-order check (checkout reads the same in its key lookup)."""
    if not seller_ids:
        return set()
    seen = run_built(session, _buyer_sellers_stmt, {
        "buyer_email": buyer_email, "states": list(ACTIVE_ORDER_STATES), "seller_ids": list(seller_ids),
    }).scalar()
    return new_to_buyer(seller_ids, aggregated_ids(seen))
