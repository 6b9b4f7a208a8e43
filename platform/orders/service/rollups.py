"""The growth rollup: per day, group and currency, kept as orders are paid and refunded, so the
growth reports read a few thousand rows instead of every order (issue 16).

Groups: `seller` (its lines and its shipping), `affiliate` (the attributed affiliate's orders, self-referrals
excepted: what it sold and its own commissions), `storefront` (the storefront's orders and every
commission they paid) and `program` (the lines a seller's program paid a commission on).

When: `record_paid` in the transaction of `settlement.mark_paid`, `record_refund` in the
transaction of each refund. Both run under the order's row lock, after the guard that makes the
event happen once (a paid order is never paid again; a refund is one journal transaction with a
UNIQUE reference), so a re-delivered payment webhook or a retried refund counts once, and a
rolled-back event rolls its rollup back with it. A refund is taken from the day its order was
paid: a day's figures are its sales as they stand today.

Customers: `growth_customers` holds each buyer's first and last day per group. A payment inserts
the row (new customer: it was not there) or moves its last day to today, returning the old one
(a returning customer, once per day: it had not bought there yet today).

`rebuild` recomputes both tables from the orders with set-based SQL, lists every difference from
what was kept, replaces them, and checks the sellers' rows against the journal (`order.paid` and
`order.refund` transactions), to the minor unit per currency.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, case, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kernel.ledger import AFFILIATE as LEDGER_AFFILIATE
from kernel.ledger import CLEARING, FEES, PLATFORM, JournalEntry, JournalTransaction
from orders.models import Commission, GrowthCustomer, GrowthDaily, Order, OrderLine, OrderStatus, SubOrder

SELLER, AFFILIATE, STOREFRONT, PROGRAM = "seller", "affiliate", "storefront", "program"
GROUP_TYPES = (SELLER, AFFILIATE, STOREFRONT, PROGRAM)
SOURCES = ("storefront", "click", "coupon")
Group = tuple[str, uuid.UUID]


@dataclass(slots=True)
class Figures:
    """One rollup row's figures (or what an event adds to it)."""

    orders: int = 0
    new_customers: int = 0
    returning_customers: int = 0
    revenue: int = 0
    refunded: int = 0
    commissions: int = 0
    fees: int = 0
    orders_via_storefront: int = 0
    orders_via_click: int = 0
    orders_via_coupon: int = 0

    def add(self, other: Figures) -> None:
        for name in FIGURES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def minus(self, other: Figures) -> Figures:
        return Figures(**{name: getattr(self, name) - getattr(other, name) for name in FIGURES})

    def is_zero(self) -> bool:
        return not any(getattr(self, name) for name in FIGURES)


FIGURES = tuple(f.name for f in fields(Figures))


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def day_of(value: Any) -> date:
    """A day as the database returns it (SQLite: text)."""
    return date.fromisoformat(value[:10]) if isinstance(value, str) else value if type(value) is date else value.date()


# --- the events ------------------------------------------------------------------------------------


def order_shares(order: Order) -> dict[Group, Figures]:
    """Each group's money in `order` as it stands now (net of what was refunded): revenue,
    refunded, fees and commissions, line by line (the rebuild's SQL computes the same)."""
    shares: dict[Group, Figures] = defaultdict(Figures)
    by_line: dict[uuid.UUID, list[Commission]] = defaultdict(list)
    for commission in order.commissions:
        by_line[commission.order_line_id].append(commission)
    attributed = order.affiliate_id is not None and not order.self_referral
    for line in order.lines:
        commissions = by_line.get(line.id, [])
        groups: list[Group] = [(SELLER, line.seller_id)]
        if attributed:
            assert order.affiliate_id is not None
            groups.append((AFFILIATE, order.affiliate_id))
        if order.storefront_id is not None:
            groups.append((STOREFRONT, order.storefront_id))
        groups += sorted({(PROGRAM, c.program_id) for c in commissions})
        for group in groups:
            figures = shares[group]
            figures.revenue += line.amount - line.refunded_amount
            figures.refunded += line.refunded_amount
            figures.fees += line.platform_fee_amount - line.refunded_platform_fee
        for c in commissions:
            net = c.amount - c.reversed_amount
            shares[(SELLER, c.seller_id)].commissions += net
            shares[(PROGRAM, c.program_id)].commissions += net
            if order.storefront_id is not None:
                shares[(STOREFRONT, order.storefront_id)].commissions += net
            if attributed and c.affiliate_id == order.affiliate_id:
                shares[(AFFILIATE, c.affiliate_id)].commissions += net
    for sub in order.sub_orders:  # shipping is the seller's revenue (only the seller group's)
        if sub.shipping_amount:
            seller = shares[(SELLER, sub.seller_id)]
            seller.revenue += sub.shipping_amount - sub.refunded_shipping_amount
            seller.refunded += sub.refunded_shipping_amount
    return dict(shares)


def record_paid(session: Session, order: Order) -> None:
    """The order was just paid (settlement.mark_paid, under its row lock): one order, its money,
    and a new or returning customer for each of its groups."""
    assert order.paid_at is not None
    day = order.paid_at.date()
    shares = order_shares(order)
    new, returning = _touch_customers(session, sorted(shares), order.buyer_email, day)
    source = f"orders_via_{order.attribution_source}"
    for group, figures in shares.items():
        figures.orders = 1
        figures.new_customers = int(group in new)
        figures.returning_customers = int(group in returning)
        if source in FIGURES:
            setattr(figures, source, 1)
    _add_daily(session, {(kind, day, group_id, order.currency): f for (kind, group_id), f in shares.items()})


def record_refund(session: Session, order: Order, before: dict[Group, Figures]) -> None:
    """A refund of `order` was just written (refunds, under its row lock); `before`: its
    `order_shares` before the refund. The difference is taken from the order's paid day."""
    assert order.paid_at is not None
    day = order.paid_at.date()
    after = order_shares(order)
    deltas = {}
    for group in sorted(set(before) | set(after)):
        delta = after.get(group, Figures()).minus(before.get(group, Figures()))
        if not delta.is_zero():
            deltas[(group[0], day, group[1], order.currency)] = delta
    _add_daily(session, deltas)


def _touch_customers(session: Session, groups: list[Group], buyer: str, day: date) -> tuple[set[Group], set[Group]]:
    """(groups where `buyer` is new, groups where it returns today for the first time)."""
    if not groups:
        return set(), set()
    stmt = _insert(session)(GrowthCustomer).values([
        {"group_type": t, "group_id": g, "buyer_email": buyer, "first_day": day, "last_day": day}
        for t, g in groups
    ]).on_conflict_do_nothing().returning(GrowthCustomer.group_type, GrowthCustomer.group_id)
    new = {(t, g) for t, g in session.execute(stmt)}
    known = [group for group in groups if group not in new]
    if not known:
        return new, set()
    rows = session.execute(
        update(GrowthCustomer)
        .where(GrowthCustomer.buyer_email == buyer,
               tuple_(GrowthCustomer.group_type, GrowthCustomer.group_id).in_(known))
        .values(seen_before=GrowthCustomer.last_day, last_day=day, second_day=func.coalesce(
            GrowthCustomer.second_day, case((GrowthCustomer.first_day < day, day), else_=None)))
        .returning(GrowthCustomer.group_type, GrowthCustomer.group_id, GrowthCustomer.seen_before)
    )
    returning = {(t, g) for t, g, seen in rows if seen is None or day_of(seen) < day}
    return new, returning


DailyKey = tuple[str, date, uuid.UUID, str]  # group type, day, group id, currency


def _add_daily(session: Session, rows: dict[DailyKey, Figures]) -> None:
    """One multi-row upsert adding each row's figures, rows in key order (the lock order)."""
    if not rows:
        return
    values = [
        {"group_type": t, "day": d, "group_id": g, "currency": c, **{n: getattr(f, n) for n in FIGURES}}
        for (t, d, g, c), f in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]), kv[0][3]))
    ]
    stmt = _insert(session)(GrowthDaily).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["group_type", "day", "group_id", "currency"],
        set_={n: getattr(GrowthDaily, n) + getattr(stmt.excluded, n) for n in FIGURES},
    )
    session.execute(stmt)


# --- the rebuild -----------------------------------------------------------------------------------


def _day(session: Session, column: Any) -> Any:
    return func.date(column) if session.get_bind().dialect.name == "sqlite" else func.cast(column, GrowthDaily.day.type)


def _paid() -> Any:
    return Order.status == OrderStatus.PAID.value


def _attributed() -> Any:
    return and_(Order.affiliate_id.is_not(None), Order.self_referral.is_(False))


def _line_groups(session: Session) -> list[tuple[str, Any, Select[Any]]]:
    """(group type, group column, the lines of paid orders that count in that group)."""
    base = select(OrderLine).join(Order, Order.id == OrderLine.order_id).where(_paid())
    programs = select(Commission.order_line_id, Commission.program_id).distinct().subquery()
    return [
        (SELLER, OrderLine.seller_id, base),
        (AFFILIATE, Order.affiliate_id, base.where(_attributed())),
        (STOREFRONT, Order.storefront_id, base.where(Order.storefront_id.is_not(None))),
        (PROGRAM, programs.c.program_id, base.join(programs, programs.c.order_line_id == OrderLine.id)),
    ]


def _expected_daily(session: Session) -> dict[DailyKey, Figures]:
    day = _day(session, Order.paid_at)
    out: dict[DailyKey, Figures] = defaultdict(Figures)

    def via(source: str) -> Any:
        return func.count(func.distinct(case((Order.attribution_source == source, Order.id))))

    for group_type, column, lines in _line_groups(session):
        stmt = lines.with_only_columns(
            column, day, Order.currency, func.count(func.distinct(Order.id)),
            func.sum(OrderLine.amount - OrderLine.refunded_amount), func.sum(OrderLine.refunded_amount),
            func.sum(OrderLine.platform_fee_amount - OrderLine.refunded_platform_fee),
            *[via(source) for source in SOURCES],
        ).group_by(column, day, Order.currency)
        for group_id, d, currency, orders, revenue, refunded, fees, *sources in session.execute(stmt):
            f = out[(group_type, day_of(d), group_id, currency)]
            f.orders, f.revenue, f.refunded, f.fees = int(orders), int(revenue), int(refunded), int(fees)
            f.orders_via_storefront, f.orders_via_click, f.orders_via_coupon = (int(n) for n in sources)
    shipped = (select(SubOrder.seller_id, day, Order.currency,
                      func.sum(SubOrder.shipping_amount - SubOrder.refunded_shipping_amount),
                      func.sum(SubOrder.refunded_shipping_amount))
               .join(Order, Order.id == SubOrder.order_id).where(_paid(), SubOrder.shipping_amount > 0)
               .group_by(SubOrder.seller_id, day, Order.currency))
    for seller_id, d, currency, revenue, refunded in session.execute(shipped):
        f = out[(SELLER, day_of(d), seller_id, currency)]
        f.revenue += int(revenue)
        f.refunded += int(refunded)
    net = func.sum(Commission.amount - Commission.reversed_amount)
    commissions = select(Commission).join(Order, Order.id == Commission.order_id).where(_paid())
    for group_type, column, stmt in (
        (SELLER, Commission.seller_id, commissions),
        (PROGRAM, Commission.program_id, commissions),
        (STOREFRONT, Order.storefront_id, commissions.where(Order.storefront_id.is_not(None))),
        (AFFILIATE, Order.affiliate_id,
         commissions.where(_attributed(), Commission.affiliate_id == Order.affiliate_id)),
    ):
        for group_id, d, currency, amount in session.execute(
            stmt.with_only_columns(column, day, Order.currency, net).group_by(column, day, Order.currency)
        ):
            out[(group_type, day_of(d), group_id, currency)].commissions += int(amount)
    for (group_type, group_id, d, currency), (new, returning) in _expected_customer_days(session).items():
        f = out[(group_type, d, group_id, currency)]
        f.new_customers, f.returning_customers = new, returning
    return dict(out)


def _buyer_orders(session: Session) -> Any:
    """(group type, group, buyer, order, paid at, day, currency) of every paid order in every group."""
    day = _day(session, Order.paid_at)
    cols = (Order.buyer_email.label("buyer"), Order.id.label("order_id"), Order.paid_at.label("paid_at"),
            day.label("day"), Order.currency.label("currency"))
    programs = select(Commission.order_id, Commission.program_id).distinct().subquery()
    parts = [
        select(literal(SELLER).label("group_type"), SubOrder.seller_id.label("group_id"), *cols)
        .join(Order, Order.id == SubOrder.order_id).where(_paid()),
        select(literal(AFFILIATE).label("group_type"), Order.affiliate_id.label("group_id"), *cols)
        .where(_paid(), _attributed()),
        select(literal(STOREFRONT).label("group_type"), Order.storefront_id.label("group_id"), *cols)
        .where(_paid(), Order.storefront_id.is_not(None)),
        select(literal(PROGRAM).label("group_type"), programs.c.program_id.label("group_id"), *cols)
        .join(programs, programs.c.order_id == Order.id).where(_paid()),
    ]
    return parts[0].union_all(*parts[1:]).subquery("buyer_orders")


def _expected_customer_days(session: Session) -> dict[tuple[str, uuid.UUID, date, str], tuple[int, int]]:
    """Per (group, day, currency): buyers new that day, and buyers back that day, each counted on
    the currency of their first order of the day."""
    b = _buyer_orders(session)
    ranked = select(
        b.c.group_type, b.c.group_id, b.c.day, b.c.currency,
        func.row_number().over(partition_by=(b.c.group_type, b.c.group_id, b.c.buyer, b.c.day),
                               order_by=(b.c.paid_at, b.c.order_id)).label("nth"),
        func.min(b.c.day).over(partition_by=(b.c.group_type, b.c.group_id, b.c.buyer)).label("first_day"),
    ).subquery()
    stmt = select(
        ranked.c.group_type, ranked.c.group_id, ranked.c.day, ranked.c.currency,
        func.sum(case((ranked.c.day == ranked.c.first_day, 1), else_=0)),
        func.sum(case((ranked.c.day != ranked.c.first_day, 1), else_=0)),
    ).where(ranked.c.nth == 1).group_by(ranked.c.group_type, ranked.c.group_id, ranked.c.day, ranked.c.currency)
    return {(t, g, day_of(d), c): (int(new), int(back)) for t, g, d, c, new, back in session.execute(stmt)}


def _expected_customers(session: Session) -> Select[Any]:
    """(group type, group, buyer, first day, last day, second day: the first later day it paid)."""
    b = _buyer_orders(session)
    firsts = select(b.c.group_type, b.c.group_id, b.c.buyer, func.min(b.c.day).label("first_day")).group_by(
        b.c.group_type, b.c.group_id, b.c.buyer).subquery("firsts")
    later = case((b.c.day > firsts.c.first_day, b.c.day), else_=None)
    return select(b.c.group_type, b.c.group_id, b.c.buyer, firsts.c.first_day, func.max(b.c.day),
                  func.min(later)).join(firsts, and_(
                      firsts.c.group_type == b.c.group_type, firsts.c.group_id == b.c.group_id,
                      firsts.c.buyer == b.c.buyer,
                  )).group_by(b.c.group_type, b.c.group_id, b.c.buyer, firsts.c.first_day)


@dataclass
class RebuildReport:
    rows: int = 0
    customers: int = 0
    differences: list[str] = field(default_factory=list)  # kept rollup vs recomputed from the orders
    journal_mismatches: list[str] = field(default_factory=list)  # recomputed vs the journal

    @property
    def agree(self) -> bool:
        return not self.differences and not self.journal_mismatches


def stored_daily(session: Session) -> dict[DailyKey, Figures]:
    out = {}
    for row in session.scalars(select(GrowthDaily)):
        out[(row.group_type, day_of(row.day), row.group_id, row.currency)] = Figures(
            **{n: getattr(row, n) for n in FIGURES})
    return out


def rebuild(session: Session, *, write: bool = True, max_listed: int = 20) -> RebuildReport:
    """Recompute the rollups from the orders, compare them with what was kept, and (`write`)
    replace what was kept; then check the recomputed sellers' rows against the journal."""
    report = RebuildReport()
    expected = _expected_daily(session)
    kept = stored_daily(session)
    for key in sorted(set(expected) | set(kept), key=lambda k: (k[0], k[1], str(k[2]), k[3])):
        want, have = expected.get(key, Figures()), kept.get(key, Figures())
        if want != have and not (want.is_zero() and have.is_zero()):
            diff = {n: (getattr(have, n), getattr(want, n)) for n in FIGURES if getattr(have, n) != getattr(want, n)}
            report.differences.append(f"{key[0]} {key[2]} {key[1]} {key[3]}: kept->recomputed {diff}")
    customers = _expected_customers(session).subquery()
    stored = select(GrowthCustomer.group_type, GrowthCustomer.group_id, GrowthCustomer.buyer_email,
                    GrowthCustomer.first_day, GrowthCustomer.last_day, GrowthCustomer.second_day)
    expected_rows = select(*customers.c)
    # On SQLite the dates are text both ways (stored by SQLAlchemy, returned by date()): the same text.
    missing = session.scalar(select(func.count()).select_from(expected_rows.except_(stored).subquery())) or 0
    extra = session.scalar(select(func.count()).select_from(stored.except_(expected_rows).subquery())) or 0
    if missing or extra:
        report.differences.append(f"customers: {missing} missing or different, {extra} not in the orders")
    report.rows = len([f for f in expected.values() if not f.is_zero()])
    report.customers = session.scalar(select(func.count()).select_from(customers)) or 0
    report.journal_mismatches = compare_with_journal(session, expected.items())
    del report.differences[max_listed:]
    if write:
        session.execute(delete(GrowthCustomer))  # the lock order: customers before the daily rows
        session.execute(insert(GrowthCustomer).from_select(
            ["group_type", "group_id", "buyer_email", "first_day", "last_day", "second_day"],
            select(*customers.c)))
        session.execute(delete(GrowthDaily))
        _insert_all(session, expected)
    return report


def _insert_all(session: Session, rows: dict[DailyKey, Figures], chunk: int = 2000) -> None:
    values = [{"group_type": t, "day": d, "group_id": g, "currency": c, **{n: getattr(f, n) for n in FIGURES}}
              for (t, d, g, c), f in rows.items() if not f.is_zero()]
    for start in range(0, len(values), chunk):
        session.execute(insert(GrowthDaily), values[start:start + chunk])


def journal_totals(session: Session) -> dict[str, tuple[int, int, int]]:
    """Per currency, from the `order.paid` and `order.refund` transactions: (what buyers paid net
    of refunds, the platform's fees, the affiliates' commissions)."""
    kinds = ("order.paid", "order.refund")
    stmt = (
        select(JournalEntry.currency,
               func.sum(case((and_(JournalEntry.owner_type == PLATFORM, JournalEntry.purpose == CLEARING),
                              -JournalEntry.amount), else_=0)),
               func.sum(case((and_(JournalEntry.owner_type == PLATFORM, JournalEntry.purpose == FEES),
                              JournalEntry.amount), else_=0)),
               func.sum(case((JournalEntry.owner_type == LEDGER_AFFILIATE, JournalEntry.amount), else_=0)))
        .join(JournalTransaction, JournalTransaction.id == JournalEntry.transaction_id)
        .where(JournalTransaction.kind.in_(kinds)).group_by(JournalEntry.currency)
    )
    return {currency: (int(a or 0), int(b or 0), int(c or 0)) for currency, a, b, c in session.execute(stmt)}


def compare_with_journal(session: Session, rows: Iterable[tuple[DailyKey, Figures]]) -> list[str]:
    """Sellers' rows summed per currency must equal the journal's figures to the minor unit."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (group_type, _, _, currency), f in rows:
        if group_type == SELLER:
            t = totals[currency]
            t[0], t[1], t[2] = t[0] + f.revenue, t[1] + f.fees, t[2] + f.commissions
    journal = journal_totals(session)
    problems = []
    for currency in sorted(set(totals) | set(journal)):
        mine, theirs = tuple(totals.get(currency, [0, 0, 0])), journal.get(currency, (0, 0, 0))
        if mine != theirs:
            problems.append(f"{currency}: rollup (revenue, fees, commissions) {mine} != journal {theirs}")
    return problems
