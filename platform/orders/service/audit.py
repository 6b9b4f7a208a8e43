"""Invariants the order domain owns, checked by `marketplace ledger audit` (and the tests): the
composition root runs every check in `AUDIT_CHECKS`.

Each check recomputes from the journal and compares with the order rows, so a minor unit lost
anywhere (a rounding slip, a half-written refund, a double posting) shows up by name.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Subquery, and_, case, exists, func, or_, select
from sqlalchemy.orm import QueryableAttribute, Session

from catalog.models import Variant
from kernel.ledger import (
    CLEARING,
    FEES,
    PENDING,
    PLATFORM,
    REFUNDS_OWED,
    AuditCheck,
    AuditFinding,
    JournalEntry,
    JournalTransaction,
)
from orders.models import (
    Commission,
    CommissionStatus,
    Order,
    OrderLine,
    OrderStatus,
    Refund,
    SubOrder,
)
from orders.service import invoices

PAID_LIKE = (OrderStatus.PAID.value,)


def _commissions_per_line() -> Subquery:
    return (select(Commission.order_line_id.label("line_id"), func.sum(Commission.amount).label("total"))
            .group_by(Commission.order_line_id).subquery())


def _refunded_net_per_sub_order() -> Subquery:
    return (select(OrderLine.sub_order_id.label("sub_order_id"),
                   func.sum(OrderLine.refunded_seller_net).label("net"))
            .group_by(OrderLine.sub_order_id).subquery())


def _held_per_source(source_type: str, *purposes: str) -> Subquery:
    """What the journal holds per source row of `source_type` (optionally in `purposes` only)."""
    stmt = (select(JournalEntry.source_id.label("source_id"), func.sum(JournalEntry.amount).label("held"))
            .where(JournalEntry.source_type == source_type))
    if purposes:
        stmt = stmt.where(JournalEntry.purpose.in_(purposes))
    return stmt.group_by(JournalEntry.source_id).subquery()


def _paid(order_id: QueryableAttribute[uuid.UUID]) -> ColumnElement[bool]:
    """`order_id` names a paid order (a join, not an IN list: any number of orders)."""
    return exists().where(Order.id == order_id, Order.status.in_(PAID_LIKE))


def order_splits_are_exact(session: Session) -> Iterable[AuditFinding]:
    """buyer pays = sum(seller nets) + sum(commissions) + platform fee, per line and per order (a
    sub-order's net holds its shipping; the sub-orders' shipping is the order's)."""
    commissions = _commissions_per_line()
    parts = OrderLine.platform_fee_amount + func.coalesce(commissions.c.total, 0) + OrderLine.seller_net_amount
    for line_id, amount, shares in session.execute(
        select(OrderLine.id, OrderLine.amount, parts)
        .outerjoin(commissions, commissions.c.line_id == OrderLine.id)
        .where(or_(parts != OrderLine.amount, OrderLine.amount != OrderLine.gross_amount - OrderLine.discount_amount))
    ):
        yield AuditFinding("order_splits_are_exact", f"line {line_id}: amount {amount} but shares sum to {int(shares)}")
    subs = (select(SubOrder.order_id.label("order_id"), func.sum(SubOrder.amount).label("amount"),
                   func.sum(SubOrder.seller_net_amount).label("net"),
                   func.sum(SubOrder.shipping_amount).label("shipping"))
            .group_by(SubOrder.order_id).subquery())
    for (order_id,) in session.execute(
        select(Order.id).outerjoin(subs, subs.c.order_id == Order.id).where(or_(
            func.coalesce(subs.c.amount, 0) != Order.total_amount,
            func.coalesce(subs.c.shipping, 0) != Order.shipping_amount,
            func.coalesce(subs.c.net, 0) + Order.commission_amount + Order.platform_fee_amount != Order.total_amount,
        ))
    ):
        yield AuditFinding("order_splits_are_exact", f"order {order_id}: sub-orders do not add up to its total")


def refunds_never_exceed_shares(session: Session) -> Iterable[AuditFinding]:
    """What refunds took back of each share lies between 0 and the share: no partner ever gives
    back more than it earned on a line, and the buyer never gets back more than the line cost."""
    for commission_id, amount, reversed_amount in session.execute(
        select(Commission.id, Commission.amount, Commission.reversed_amount)
        .where(or_(Commission.reversed_amount < 0, Commission.reversed_amount > Commission.amount))
    ):
        yield AuditFinding("refunds_never_exceed_shares",
                           f"commission {commission_id}: reversed {reversed_amount} of {amount}")
    pairs = ((OrderLine.refunded_amount, OrderLine.amount), (OrderLine.refunded_platform_fee,
             OrderLine.platform_fee_amount), (OrderLine.refunded_seller_net, OrderLine.seller_net_amount))
    for line in session.scalars(select(OrderLine).where(
        OrderLine.refunded_quantity > 0, or_(*(or_(taken < 0, taken > share) for taken, share in pairs))
    )):
        for name, taken, share in (
            ("amount", line.refunded_amount, line.amount),
            ("platform fee", line.refunded_platform_fee, line.platform_fee_amount),
            ("seller net", line.refunded_seller_net, line.seller_net_amount),
        ):
            if not 0 <= taken <= share:
                yield AuditFinding("refunds_never_exceed_shares", f"line {line.id}: refunded {taken} of {name} {share}")
    for sub_id, taken, share in session.execute(
        select(SubOrder.id, SubOrder.refunded_shipping_amount, SubOrder.shipping_amount).where(or_(
            SubOrder.refunded_shipping_amount < 0, SubOrder.refunded_shipping_amount > SubOrder.shipping_amount))
    ):
        yield AuditFinding("refunds_never_exceed_shares", f"sub-order {sub_id}: refunded {taken} of shipping {share}")


def failed_refunds_are_owed(session: Session) -> Iterable[AuditFinding]:
    """A refund the rail failed owes its amount to the buyer (`refund.failed` once) until an
    operator settles it (`refund.settled` once); the platform's refunds_owed is exactly the sum
    of the failed, unsettled refunds."""
    expected = {"failed": {"refund.failed"}, "settled": {"refund.failed", "refund.settled"}}
    posted: dict[str, list[str]] = defaultdict(list)
    for kind, reference in session.execute(
        select(JournalTransaction.kind, JournalTransaction.reference_id)
        .where(JournalTransaction.kind.in_(("refund.failed", "refund.settled")))
    ):
        posted[reference].append(kind)
    owed: dict[str, int] = defaultdict(int)
    for refund_id, status, amount, currency in session.execute(
        select(Refund.id, Refund.status, Refund.amount, Refund.currency)
    ):
        kinds = posted.pop(str(refund_id), [])
        if sorted(kinds) != sorted(expected.get(status, set())):
            yield AuditFinding("failed_refunds_are_owed", f"refund {refund_id} is {status} but posted {sorted(kinds)}")
        if status == "failed":
            owed[currency] += amount
    for reference, kinds in posted.items():
        yield AuditFinding("failed_refunds_are_owed", f"{sorted(kinds)} name no refund ({reference})")
    booked = dict(session.execute(
        select(JournalEntry.currency, func.sum(JournalEntry.amount))
        .where(JournalEntry.owner_type == PLATFORM, JournalEntry.purpose == REFUNDS_OWED)
        .group_by(JournalEntry.currency)
    ).all())
    for currency in set(owed) | set(booked):
        if int(booked.get(currency) or 0) != owed.get(currency, 0):
            yield AuditFinding("failed_refunds_are_owed", f"refunds_owed {booked.get(currency)} {currency} but "
                               f"failed refunds sum to {owed.get(currency, 0)}")


def paid_orders_posted_once(session: Session) -> Iterable[AuditFinding]:
    """Every paid order has exactly one `order.paid` transaction debiting clearing by its total;
    orders never paid have none."""
    posted = (
        select(JournalTransaction.order_id.label("order_id"), func.sum(JournalEntry.amount).label("debit"))
        .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
        .where(JournalTransaction.kind == "order.paid", JournalEntry.owner_type == PLATFORM,
               JournalEntry.purpose == CLEARING)
        .group_by(JournalTransaction.order_id).subquery()
    )
    paid = Order.status.in_(PAID_LIKE)
    for order_id, status, total, debit in session.execute(
        select(Order.id, Order.status, Order.total_amount, posted.c.debit)
        .outerjoin(posted, posted.c.order_id == Order.id)
        .where(or_(
            and_(paid, or_(posted.c.debit.is_(None), posted.c.debit != -Order.total_amount)),
            and_(~paid, posted.c.debit.is_not(None)),
        ))
    ):
        if status in PAID_LIKE:
            yield AuditFinding("paid_orders_posted_once", f"paid order {order_id} debits clearing "
                               f"{None if debit is None else int(debit)}, not -{total}")
        else:
            yield AuditFinding("paid_orders_posted_once", f"order {order_id} is {status} but has a payment posting")


def refunds_match_journal(session: Session) -> Iterable[AuditFinding]:
    # Refunds are few next to orders, and a refund's journal reference is its id as text (which a
    # portable SQL join cannot match to a SQLite UUID column): compared here, row by row.
    credited: dict[object, int] = dict(session.execute(
        select(JournalTransaction.reference_id, func.sum(JournalEntry.amount))
        .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
        .where(JournalTransaction.kind == "order.refund", JournalEntry.owner_type == PLATFORM,
               JournalEntry.purpose == CLEARING)
        .group_by(JournalTransaction.reference_id)
    ).all())
    for refund_id, amount in session.execute(select(Refund.id, Refund.amount)):
        if credited.get(str(refund_id)) != amount:
            yield AuditFinding("refunds_match_journal", f"refund {refund_id} of {amount} is not in the journal")
    per_order = (select(Refund.order_id.label("order_id"), func.sum(Refund.amount).label("total"))
                 .group_by(Refund.order_id).subquery())
    refunds_sum = func.coalesce(per_order.c.total, 0)
    for order_id, refunded, total, summed in session.execute(
        select(Order.id, Order.refunded_amount, Order.total_amount, refunds_sum)
        .outerjoin(per_order, per_order.c.order_id == Order.id)
        .where(or_(Order.refunded_amount != refunds_sum, Order.refunded_amount > Order.total_amount))
    ):
        yield AuditFinding("refunds_match_journal", f"order {order_id}: refunded {refunded} of {total} "
                                                    f"but refunds sum to {int(summed)}")


def shares_match_journal(session: Session) -> Iterable[AuditFinding]:
    """What the journal holds for each commission and seller share (pending + available, before
    any payout moves it) equals its amount less refunds; fees likewise in total."""
    held = _held_per_source("commission")
    expected = Commission.amount - Commission.reversed_amount
    holds = func.coalesce(held.c.held, 0)
    for commission_id, held_amount, expected_amount in session.execute(
        select(Commission.id, holds, expected)
        .outerjoin(held, held.c.source_id == Commission.id)
        .where(_paid(Commission.order_id), holds != expected)
    ):
        yield AuditFinding("shares_match_journal", f"commission {commission_id}: journal holds {int(held_amount)}, "
                                                   f"expected {expected_amount}")
    held = _held_per_source("sub_order")
    refunded = _refunded_net_per_sub_order()
    expected = SubOrder.seller_net_amount - SubOrder.refunded_shipping_amount - func.coalesce(refunded.c.net, 0)
    holds = func.coalesce(held.c.held, 0)
    for sub_id, held_amount, expected_amount in session.execute(
        select(SubOrder.id, holds, expected)
        .outerjoin(held, held.c.source_id == SubOrder.id)
        .outerjoin(refunded, refunded.c.sub_order_id == SubOrder.id)
        .where(_paid(SubOrder.order_id), holds != expected)
    ):
        yield AuditFinding("shares_match_journal", f"sub-order {sub_id}: journal holds {int(held_amount)}, "
                                                   f"expected {int(expected_amount)}")
    fees_posted = session.scalar(select(func.coalesce(func.sum(JournalEntry.amount), 0)).where(
        JournalEntry.owner_type == PLATFORM, JournalEntry.purpose == FEES,
        JournalEntry.source_type.in_(("order", "order_line")))) or 0
    fees_expected = (session.scalar(select(func.coalesce(func.sum(Order.platform_fee_amount), 0))
                                    .where(Order.status.in_(PAID_LIKE))) or 0) - (
        session.scalar(select(func.coalesce(func.sum(OrderLine.refunded_platform_fee), 0))) or 0)
    if fees_posted != fees_expected:
        yield AuditFinding("shares_match_journal", f"fee revenue is {fees_posted}, orders say {fees_expected}")


def shares_sit_in_their_account(session: Session) -> Iterable[AuditFinding]:
    """A share is pending until its holding period is over, then available: a released share
    holds nothing in pending, an unreleased one everything it is owed (a refund that debited the
    wrong one of the two would still pass shares_match_journal, which sums both)."""
    pending = _held_per_source("commission", PENDING)
    holds = func.coalesce(pending.c.held, 0)
    expected = case((Commission.status != CommissionStatus.PENDING.value, 0),
                    else_=Commission.amount - Commission.reversed_amount)
    for commission_id, status, held_amount, expected_amount in session.execute(
        select(Commission.id, Commission.status, holds, expected)
        .outerjoin(pending, pending.c.source_id == Commission.id)
        .where(_paid(Commission.order_id), holds != expected)
    ):
        yield AuditFinding("shares_sit_in_their_account", f"commission {commission_id} ({status}): pending holds "
                           f"{int(held_amount)}, expected {int(expected_amount)}")
    pending = _held_per_source("sub_order", PENDING)
    refunded = _refunded_net_per_sub_order()
    holds = func.coalesce(pending.c.held, 0)
    expected = case((SubOrder.seller_share_released, 0), else_=SubOrder.seller_net_amount
                    - SubOrder.refunded_shipping_amount - func.coalesce(refunded.c.net, 0))
    for sub_id, released, held_amount, expected_amount in session.execute(
        select(SubOrder.id, SubOrder.seller_share_released, holds, expected)
        .outerjoin(pending, pending.c.source_id == SubOrder.id)
        .outerjoin(refunded, refunded.c.sub_order_id == SubOrder.id)
        .where(_paid(SubOrder.order_id), holds != expected)
    ):
        yield AuditFinding("shares_sit_in_their_account", f"sub-order {sub_id} (released: {released}): pending "
                           f"holds {int(held_amount)}, expected {int(expected_amount)}")


def stock_never_negative(session: Session) -> Iterable[AuditFinding]:
    for variant_id, stock in session.execute(select(Variant.id, Variant.stock).where(Variant.stock < 0)):
        yield AuditFinding("stock_never_negative", f"variant {variant_id} has stock {stock}")


AUDIT_CHECKS: tuple[tuple[str, AuditCheck], ...] = (
    ("order_splits_are_exact", order_splits_are_exact),
    ("refunds_never_exceed_shares", refunds_never_exceed_shares),
    ("failed_refunds_are_owed", failed_refunds_are_owed),
    ("paid_orders_posted_once", paid_orders_posted_once),
    ("refunds_match_journal", refunds_match_journal),
    ("shares_match_journal", shares_match_journal),
    ("shares_sit_in_their_account", shares_sit_in_their_account),
    ("stock_never_negative", stock_never_negative),
    ("receivables_match_open_invoices", invoices.receivables_match_open_invoices),
)
