"""Read side of the order domain: lists with cursor pages, balances."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from affiliates.models import Storefront
from kernel import ledger
from kernel.auth import Principal, Role
from kernel.ledger import AVAILABLE, CLEARING, FEES, IN_TRANSIT, PAID_OUT, PENDING, PLATFORM, REFUNDS_OWED
from orders.errors import OrderNotFound
from orders.models import Commission, Order, Refund, SubOrder
from orders.schemas import BalanceOut, BalancesOut, PlatformBalanceOut


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
        else:
            parts[f"payees_{bal.purpose}"] += bal.amount
    return [
        PlatformBalanceOut(
            currency=currency, fees=parts[FEES], clearing=parts[CLEARING], payees_pending=parts["payees_pending"],
            payees_available=parts["payees_available"], payees_in_transit=parts["payees_in_transit"],
            paid_out=parts[PAID_OUT], refunds_owed=parts[REFUNDS_OWED],
        )
        for currency, parts in sorted(totals.items())
    ]


def storefront_ids_of(session: Session, affiliate_id: uuid.UUID | None) -> set[uuid.UUID]:
    return set(session.scalars(select(Storefront.id).where(Storefront.affiliate_id == affiliate_id)))
