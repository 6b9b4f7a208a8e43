"""Refunds: full or partial (by line and quantity), with an exact clawback in the journal.

For each refunded line the refunds reverse, with the design's rule, `share * refunded qty / line
qty` (round half to even) of the platform fee and of each commission, counted cumulatively: each
refund takes what that figure for all units refunded so far says, minus what earlier refunds
already took. Rounding each refund on its own would drift: a commission of 4 on 6 units refunded
one unit at a time would reverse 1+1+1+1+1 (5 > 4) and then -1. Cumulative rounding never takes
more than the share, and the refund that empties a line reverses exactly what is left. What the
buyer gets back for the line is prorated the same way and the seller's reversal is the residual,
so every refund transaction sums to zero and, once a line is fully refunded, every share of it is
back to exactly zero.

Shipping (a sub-order's `shipping_amount`, all of it the seller's, no fee, no commission) is given
back whole, never prorated, by these rules (`_shipping_refunds`):
- a refund of everything left (of the order, or of a seller's part: no lines named) gives back
  what is left of the shipping of every sub-order it touches;
- a refund that leaves no unit of a sub-order unrefunded gives back what is left of its shipping;
- a partial refund of a sub-order's lines does not, unless asked (`include_shipping`): then it
  gives back what is left of the shipping of each sub-order whose lines it refunds.
The seller's share is reversed by the same amount, so the refund still sums to zero.

Each reversal debits the account the share sits in now: `pending` inside the holding period,
`available` after it. If the share was already paid out, `available` goes negative: on the Stripe
rail the payout's transfer is partly reversed (payouts/service/recoveries.py); otherwise, or if the
reversal is refused, the next payout nets it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel import ledger, locking
from kernel.db import new_id
from kernel.ledger import (
    AFFILIATE,
    AVAILABLE,
    CLEARING,
    FEES,
    PENDING,
    PLATFORM,
    REFUNDS_OWED,
    SELLER,
    Posting,
)
from kernel.money import prorate
from kernel.tasking import enqueue_after_commit
from orders.errors import IdempotencyKeyReused, InvalidTransition, RefundInvalid, RefundNotFound
from orders.models import (
    Commission,
    CommissionStatus,
    Order,
    OrderLine,
    OrderStatus,
    Refund,
    SubOrder,
    SubOrderStatus,
    request_fingerprint,
)
from orders.service import rollups
from orders.service.settlement import lock_order
from orders.service.states import move_commission, move_sub_order


@dataclass(frozen=True, slots=True)
class RefundItem:
    order_line_id: uuid.UUID
    quantity: int


def _share_reversal(share: int, already: int, qty: int, refunded_before: int, line_qty: int) -> int:
    """What this refund of `qty` more units reverses of `share`, given `already` reversed for the
    `refunded_before` units refunded earlier. Rounding is monotone in the quantity, so this is
    never negative; at `line_qty` it is exactly `share - already`."""
    return prorate(share, refunded_before + qty, line_qty) - already


def _lock_shares(session: Session, order_id: uuid.UUID) -> None:
    """Lock (and re-read) the order's sub-orders and commissions, after the order row, in the
    global lock order (kernel.locking). The release job moves shares from pending to available
    holding only these rows (`settlement.release_matured`, SKIP LOCKED), and a payout freeze
    claims them holding only these rows: a refund must see a release that committed before it
    got them, and a release must skip the rows of a refund in progress, or the reversal debits
    the account the share has just left."""
    locking.lock_all(session, [select(SubOrder).where(SubOrder.order_id == order_id),
                               select(Commission).where(Commission.order_id == order_id)], reread=True)


@dataclass(frozen=True, slots=True)
class IdempotentRequest:
    """A client's Idempotency-Key and a fingerprint of what it asked (endpoint and body)."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str, endpoint: str, body: object) -> IdempotentRequest:
        return cls(key, request_fingerprint({"endpoint": endpoint, "body": body}))


def refund_order_once(
    session: Session, order_id: uuid.UUID, items: Sequence[RefundItem] | None, request: IdempotentRequest, *,
    reason: str, requested_by: str, seller_id: uuid.UUID | None = None, include_shipping: bool = False,
) -> tuple[Refund, bool]:
    """`refund_order` for a request with an Idempotency-Key: the first makes the refund; a retry
    (same key, same request) gets that refund back, True, however the order changed since; the
    same key with another request is a 409. Under the order lock, so two at once are one."""
    order = lock_order(session, order_id)
    earlier = session.scalar(select(Refund).where(Refund.order_id == order_id, Refund.idempotency_key == request.key))
    if earlier is not None:
        if earlier.request_hash != request.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different refund of this order; use a new key for a new refund"
            )
        return earlier, True
    refund = _refund_locked(session, order, items, reason=reason, requested_by=requested_by, seller_id=seller_id,
                            request=request, include_shipping=include_shipping)
    return refund, False


def refund_order(
    session: Session, order_id: uuid.UUID, items: Sequence[RefundItem] | None, *, reason: str,
    requested_by: str, seller_id: uuid.UUID | None = None, include_shipping: bool = False,
) -> Refund:
    """Refund the given lines (None: everything left, or everything left of `seller_id`'s part)."""
    return _refund_locked(session, lock_order(session, order_id), items, reason=reason,
                          requested_by=requested_by, seller_id=seller_id, include_shipping=include_shipping)


def _refund_locked(
    session: Session, order: Order, items: Sequence[RefundItem] | None, *, reason: str,
    requested_by: str, seller_id: uuid.UUID | None, request: IdempotentRequest | None = None,
    include_shipping: bool = False,
) -> Refund:
    """`refund_order` once the caller holds the order's row lock (`lock_order`); `request`: the
    client's Idempotency-Key and fingerprint, stored with the refund."""
    if order.status != OrderStatus.PAID:
        raise InvalidTransition(f"order {order.id} is {order.status}; only paid orders can be refunded")
    _lock_shares(session, order.id)
    lines_by_id = {line.id: line for line in order.lines}
    everything_left = items is None
    if items is None:
        items = [
            RefundItem(line.id, line.quantity - line.refunded_quantity) for line in order.lines
            if line.quantity > line.refunded_quantity and (seller_id is None or line.seller_id == seller_id)
        ]
    if not items:
        raise RefundInvalid("nothing left to refund")
    seen: set[uuid.UUID] = set()
    for item in items:
        line = lines_by_id.get(item.order_line_id)
        if line is None or (seller_id is not None and line.seller_id != seller_id):
            raise RefundInvalid(f"order line {item.order_line_id} is not part of this order")
        if item.order_line_id in seen:
            raise RefundInvalid(f"order line {item.order_line_id} is listed twice")
        seen.add(item.order_line_id)
        left = line.quantity - line.refunded_quantity
        if not 1 <= item.quantity <= left:
            raise RefundInvalid(f"order line {line.id} has {left} unit(s) left to refund, not {item.quantity}")

    shares_before = rollups.order_shares(order)  # the growth rollup takes the difference
    subs = {sub.id: sub for sub in order.sub_orders}
    commissions_by_line: dict[uuid.UUID, list[Commission]] = {}
    for commission in order.commissions:
        commissions_by_line.setdefault(commission.order_line_id, []).append(commission)

    # The id is set here, not by a flush: the row is inserted once, complete, at the flush below
    # (inserting it empty and updating it later would lock it again after the shares).
    refund = Refund(
        id=new_id(), order_id=order.id, currency=order.currency, amount=0, reason=reason,
        requested_by=requested_by, lines=[], sub_order_id=None,
        idempotency_key=request.key if request else None, request_hash=request.fingerprint if request else None,
    )
    refund.shipping_amount = 0
    session.add(refund)
    postings: list[Posting] = []
    recorded_lines = []
    for item in items:
        line = lines_by_id[item.order_line_id]
        sub = subs[line.sub_order_id]
        amount, fee, commission_parts = _reverse_line(line, item.quantity, commissions_by_line.get(line.id, []))
        seller_part = amount - fee - sum(part for _, part in commission_parts)
        line.refunded_quantity += item.quantity
        line.refunded_amount += amount
        line.refunded_platform_fee += fee
        line.refunded_seller_net += seller_part
        sub.refunded_amount += amount
        refund.amount += amount
        seller_account = AVAILABLE if sub.seller_share_released else PENDING
        postings.append(Posting(SELLER, sub.seller_id, seller_account, -seller_part, "sub_order", sub.id))
        postings.append(Posting(PLATFORM, None, FEES, -fee, "order_line", line.id))
        for commission, part in commission_parts:
            account = PENDING if commission.status == CommissionStatus.PENDING else AVAILABLE
            commission.reversed_amount += part
            if commission.reversed_amount == commission.amount and commission.status == CommissionStatus.PENDING:
                move_commission(commission, CommissionStatus.REVERSED)
            postings.append(Posting(AFFILIATE, commission.affiliate_id, account, -part, "commission", commission.id))
        recorded_lines.append({"order_line_id": str(line.id), "quantity": item.quantity, "amount": amount})
    touched_subs = {lines_by_id[item.order_line_id].sub_order_id for item in items}
    for sub, shipping in _shipping_refunds(order, [subs[i] for i in sorted(touched_subs)],
                                           everything_left or include_shipping):
        sub.refunded_shipping_amount += shipping
        sub.refunded_amount += shipping
        refund.amount += shipping
        refund.shipping_amount += shipping
        seller_account = AVAILABLE if sub.seller_share_released else PENDING
        postings.append(Posting(SELLER, sub.seller_id, seller_account, -shipping, "sub_order", sub.id))
    postings.append(Posting(PLATFORM, None, CLEARING, refund.amount, "refund", refund.id))
    refund.lines = recorded_lines
    if len(touched_subs) == 1:
        refund.sub_order_id = next(iter(touched_subs))
    order.refunded_amount += refund.amount
    ledger.post(
        session, kind="order.refund", reference_type="refund", reference_id=refund.id, currency=order.currency,
        order_id=order.id, postings=postings, memo=reason[:200] or "refund",
    )
    rollups.record_refund(session, order, shares_before)
    if order.payment_rail == "stripe":
        # The money goes back through Stripe after this transaction commits (idempotent task).
        enqueue_after_commit(session, "orders.send_refund", str(refund.id))
    clawed_from_available = sorted({
        (p.owner_type, str(p.owner_id), order.currency) for p in postings
        if p.purpose == AVAILABLE and p.amount < 0 and p.owner_id is not None
    })
    if clawed_from_available:
        # A share that was already released may have been paid out too: payouts takes back from
        # the paid transfer what the balance cannot cover (payouts/service/recoveries.py).
        enqueue_after_commit(session, "payouts.recover_clawbacks", [list(a) for a in clawed_from_available])
    session.flush()
    return refund


KIND_REFUND_FAILED = "refund.failed"
KIND_REFUND_SETTLED = "refund.settled"


def record_refund_failure(session: Session, refund: Refund, reason: str) -> None:
    """The rail did not return the buyer's money after all. The refund keeps its reversal of every
    share (the sale is undone either way), but the money is held again and now owed to the buyer:
    `refund.failed` moves it from clearing to the platform's `refunds_owed` until an operator
    settles it another way (`settle_failed_refund`). Idempotent."""
    if refund.status in ("failed", "settled"):
        return
    refund.status = "failed"
    refund.failure_reason = reason[:500]
    source = ("refund", refund.id)
    ledger.post(
        session, kind=KIND_REFUND_FAILED, reference_type="refund", reference_id=refund.id,
        currency=refund.currency, order_id=refund.order_id, memo=refund.failure_reason[:200],
        postings=[Posting(PLATFORM, None, CLEARING, -refund.amount, *source),
                  Posting(PLATFORM, None, REFUNDS_OWED, refund.amount, *source)],
    )


def settle_failed_refund(session: Session, refund_id: uuid.UUID, note: str) -> Refund:
    """An operator paid the buyer back outside the rail (a bank transfer): the debt is gone."""
    refund = session.get(Refund, refund_id, with_for_update=True)
    if refund is None:
        raise RefundNotFound(f"no refund {refund_id}")
    if refund.status != "failed":
        raise InvalidTransition(f"refund {refund_id} is {refund.status}; only failed refunds can be settled")
    refund.status = "settled"
    source = ("refund", refund.id)
    ledger.post(
        session, kind=KIND_REFUND_SETTLED, reference_type="refund", reference_id=refund.id,
        currency=refund.currency, order_id=refund.order_id, memo=(note or "settled outside the rail")[:200],
        postings=[Posting(PLATFORM, None, REFUNDS_OWED, -refund.amount, *source),
                  Posting(PLATFORM, None, CLEARING, refund.amount, *source)],
    )
    return refund


def _shipping_refunds(order: Order, touched: Sequence[SubOrder], asked: bool) -> list[tuple[SubOrder, int]]:
    """The shipping this refund gives back, per sub-order it touches (the rules in the module
    docstring): all that is left of it when `asked` (everything left refunded, or include_shipping)
    or when no unit of the sub-order is left unrefunded (its lines' counts as updated by this refund)."""
    out = []
    for sub in touched:
        left = sub.shipping_amount - sub.refunded_shipping_amount
        if left <= 0:
            continue
        emptied = all(line.refunded_quantity == line.quantity for line in order.lines if line.sub_order_id == sub.id)
        if asked or emptied:
            out.append((sub, left))
    return out


def _reverse_line(
    line: OrderLine, qty: int, commissions: list[Commission]
) -> tuple[int, int, list[tuple[Commission, int]]]:
    """What refunding `qty` more units of `line` reverses: (amount, platform fee, each commission's
    part); the seller's part is the rest. The fee and commissions are prorated one by one, so their
    rounding can leave a rest outside what is left of the seller's net (by a unit or two, when that
    net is near zero: a plan's pool capped at the line's amount less the fee). The rest is kept
    inside it and the difference taken by the fee, then the commissions, each within what is left
    of it: no share is ever reversed beyond what was booked, and the refund that empties the line
    still reverses exactly what is left of every share (its rest is then the seller's rest)."""
    before = line.refunded_quantity
    amount = _share_reversal(line.amount, line.refunded_amount, qty, before, line.quantity)
    shares = [(line.platform_fee_amount, line.refunded_platform_fee)]
    shares += [(c.amount, c.reversed_amount) for c in commissions]
    parts = [min(max(_share_reversal(total, done, qty, before, line.quantity), 0), total - done)
             for total, done in shares]
    rest = amount - sum(parts)
    seller_left = line.seller_net_amount - line.refunded_seller_net
    excess = rest - min(max(rest, 0), seller_left)
    for index, (total, done) in enumerate(shares):
        step = min(excess, total - done - parts[index]) if excess > 0 else -min(-excess, parts[index])
        parts[index] += step
        excess -= step
    assert excess == 0, "a refund's parts always fit what is left of the line's shares"
    return amount, parts[0], list(zip(commissions, parts[1:], strict=True))


def reject_sub_order(session: Session, sub: SubOrder, reason: str) -> Refund | None:
    """A seller refuses its part before shipping: refund it and put the stock back."""
    from catalog.service import release_stock

    if sub.status not in (SubOrderStatus.PAID, SubOrderStatus.ACCEPTED):
        raise InvalidTransition(f"sub-order {sub.id} is {sub.status}; only paid or accepted ones can be rejected")
    refund = refund_order(session, sub.order_id, None, reason=reason or "rejected by seller",
                          requested_by="seller", seller_id=sub.seller_id)
    move_sub_order(sub, SubOrderStatus.REJECTED)
    sub.reject_reason = reason
    for line in sorted(sub.lines, key=lambda item: item.variant_id):
        release_stock(session, line.variant_id, line.quantity)
    return refund

