"""Invariants the order domain owns, checked by `marketplace ledger audit` (and the tests): the
composition root runs every check in `AUDIT_CHECKS`.

Each check recomputes from the journal and compares with the order rows, so a minor unit lost
anywhere (a rounding slip, a half-written refund, a double posting) shows up by name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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

PAID_LIKE = (OrderStatus.PAID.value,)


def order_splits_are_exact(session: Session) -> Iterable[AuditFinding]:
    """buyer pays = sum(seller nets) + sum(commissions) + platform fee, per line and per order."""
    commission_by_line: dict[object, int] = defaultdict(int)
    for line_id, amount in session.execute(select(Commission.order_line_id, Commission.amount)):
        commission_by_line[line_id] += amount
    for line in session.scalars(select(OrderLine)):
        parts = line.platform_fee_amount + commission_by_line[line.id] + line.seller_net_amount
        if parts != line.amount or line.amount != line.gross_amount - line.discount_amount:
            yield AuditFinding("order_splits_are_exact",
                               f"line {line.id}: amount {line.amount} but shares sum to {parts}")
    for order in session.scalars(select(Order)):
        subs = order.sub_orders
        if sum(s.amount for s in subs) != order.total_amount or (
            sum(s.seller_net_amount for s in subs) + order.commission_amount + order.platform_fee_amount
            != order.total_amount
        ):
            yield AuditFinding("order_splits_are_exact", f"order {order.id}: sub-orders do not add up to its total")


def refunds_never_exceed_shares(session: Session) -> Iterable[AuditFinding]:
    """What refunds took back of each share lies between 0 and the share: no partner ever gives
    back more than it earned on a line, and the buyer never gets back more than the line cost."""
    for commission_id, amount, reversed_amount in session.execute(
        select(Commission.id, Commission.amount, Commission.reversed_amount)
    ):
        if not 0 <= reversed_amount <= amount:
            yield AuditFinding("refunds_never_exceed_shares",
                               f"commission {commission_id}: reversed {reversed_amount} of {amount}")
    for line in session.scalars(select(OrderLine).where(OrderLine.refunded_quantity > 0)):
        for name, taken, share in (
            ("amount", line.refunded_amount, line.amount),
            ("platform fee", line.refunded_platform_fee, line.platform_fee_amount),
            ("seller net", line.refunded_seller_net, line.seller_net_amount),
        ):
            if not 0 <= taken <= share:
                yield AuditFinding("refunds_never_exceed_shares", f"line {line.id}: refunded {taken} of {name} {share}")


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
    posted: dict[object, int] = dict(session.execute(
        select(JournalTransaction.order_id, func.sum(JournalEntry.amount))
        .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
        .where(JournalTransaction.kind == "order.paid", JournalEntry.owner_type == PLATFORM,
               JournalEntry.purpose == CLEARING)
        .group_by(JournalTransaction.order_id)
    ).all())
    for order_id, status, total in session.execute(select(Order.id, Order.status, Order.total_amount)):
        debit = posted.get(order_id)
        if status in PAID_LIKE and debit != -total:
            yield AuditFinding("paid_orders_posted_once",
                               f"paid order {order_id} debits clearing {debit}, not -{total}")
        if status not in PAID_LIKE and debit is not None:
            yield AuditFinding("paid_orders_posted_once", f"order {order_id} is {status} but has a payment posting")


def refunds_match_journal(session: Session) -> Iterable[AuditFinding]:
    credited: dict[object, int] = dict(session.execute(
        select(JournalTransaction.reference_id, func.sum(JournalEntry.amount))
        .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
        .where(JournalTransaction.kind == "order.refund", JournalEntry.owner_type == PLATFORM,
               JournalEntry.purpose == CLEARING)
        .group_by(JournalTransaction.reference_id)
    ).all())
    per_order: dict[object, int] = defaultdict(int)
    for refund in session.scalars(select(Refund)):
        per_order[refund.order_id] += refund.amount
        if credited.get(str(refund.id)) != refund.amount:
            yield AuditFinding("refunds_match_journal", f"refund {refund.id} of {refund.amount} is not in the journal")
    for order_id, refunded, total in session.execute(select(Order.id, Order.refunded_amount, Order.total_amount)):
        if refunded != per_order.get(order_id, 0) or refunded > total:
            yield AuditFinding("refunds_match_journal", f"order {order_id}: refunded {refunded} of {total} "
                                                        f"but refunds sum to {per_order.get(order_id, 0)}")


def shares_match_journal(session: Session) -> Iterable[AuditFinding]:
    """What the journal holds for each commission and seller share (pending + available, before
    any payout moves it) equals its amount less refunds; fees likewise in total."""
    by_source: dict[tuple[str | None, object], int] = defaultdict(int)
    for source_type, source_id, amount in session.execute(
        select(JournalEntry.source_type, JournalEntry.source_id, func.sum(JournalEntry.amount))
        .where(JournalEntry.source_type.in_(("commission", "sub_order")))
        .group_by(JournalEntry.source_type, JournalEntry.source_id)
    ):
        by_source[(source_type, source_id)] = int(amount)
    paid_orders = set(session.scalars(select(Order.id).where(Order.status.in_(PAID_LIKE))))
    for c in session.scalars(select(Commission).where(Commission.order_id.in_(paid_orders))):
        expected = c.amount - c.reversed_amount
        if by_source[("commission", c.id)] != expected:
            held = by_source[("commission", c.id)]
            yield AuditFinding("shares_match_journal", f"commission {c.id}: journal holds {held}, expected {expected}")
    refunded_net: dict[object, int] = defaultdict(int)
    for sub_id, net in session.execute(select(OrderLine.sub_order_id, OrderLine.refunded_seller_net)):
        refunded_net[sub_id] += net
    for sub in session.scalars(select(SubOrder).where(SubOrder.order_id.in_(paid_orders))):
        expected = sub.seller_net_amount - refunded_net[sub.id]
        if by_source[("sub_order", sub.id)] != expected:
            held = by_source[("sub_order", sub.id)]
            yield AuditFinding("shares_match_journal", f"sub-order {sub.id}: journal holds {held}, expected {expected}")
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
    pending: dict[tuple[str | None, object], int] = defaultdict(int)
    for source_type, source_id, amount in session.execute(
        select(JournalEntry.source_type, JournalEntry.source_id, func.sum(JournalEntry.amount))
        .where(JournalEntry.source_type.in_(("commission", "sub_order")), JournalEntry.purpose == PENDING)
        .group_by(JournalEntry.source_type, JournalEntry.source_id)
    ):
        pending[(source_type, source_id)] = int(amount)
    paid_orders = select(Order.id).where(Order.status.in_(PAID_LIKE))
    for c in session.scalars(select(Commission).where(Commission.order_id.in_(paid_orders))):
        released = c.status != CommissionStatus.PENDING
        expected = 0 if released else c.amount - c.reversed_amount
        if pending[("commission", c.id)] != expected:
            yield AuditFinding("shares_sit_in_their_account", f"commission {c.id} ({c.status}): pending holds "
                               f"{pending[('commission', c.id)]}, expected {expected}")
    refunded_net: dict[object, int] = defaultdict(int)
    for sub_id, net in session.execute(select(OrderLine.sub_order_id, OrderLine.refunded_seller_net)):
        refunded_net[sub_id] += net
    for sub in session.scalars(select(SubOrder).where(SubOrder.order_id.in_(paid_orders))):
        expected = 0 if sub.seller_share_released else sub.seller_net_amount - refunded_net[sub.id]
        if pending[("sub_order", sub.id)] != expected:
            yield AuditFinding("shares_sit_in_their_account", f"sub-order {sub.id} (released: "
                               f"{sub.seller_share_released}): pending holds {pending[('sub_order', sub.id)]}, "
                               f"expected {expected}")


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
)
