"""`payouts_never_pay_twice`: the payout invariants, recomputed from the journal and the items.

Exported in `AUDIT_CHECKS`; the composition root adds it to the ledger audit (`marketplace ledger audit`):

1. At most one `payout.paid` per item (the journal's UNIQUE makes more impossible; we check anyway).
2. Every item's postings match its state: queued / skipped -> none; frozen / sending -> one
   freeze; paid -> one freeze and one paid; failed -> one freeze and one failed; each of the
   item's amount, on the item's own payee accounts. No payout posting names a missing item.
3. Every payee's `in_transit` balance equals the sum of its frozen-not-settled items.
4. Claims: a commission or sub-order claimed by an item belongs to that item's payee and
   currency, and the item is live (frozen, sending or paid: a failed item gives claims back);
   a commission with status `paid` is claimed by an item.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel.ledger import (
    AFFILIATE,
    AVAILABLE,
    IN_TRANSIT,
    PAID_OUT,
    PLATFORM,
    SELLER,
    AuditCheck,
    AuditFinding,
    JournalEntry,
    JournalTransaction,
)
from orders.models import Commission, CommissionStatus, SubOrder
from payouts.models import (
    IN_FLIGHT_ITEM_STATUSES,
    KIND_FAILED,
    KIND_FREEZE,
    KIND_PAID,
    KIND_RECOVERED,
    PAYOUT_KINDS,
    ItemStatus,
    PayoutItem,
    PayoutRecovery,
    RecoveryStatus,
)

CHECK = "payouts_never_pay_twice"
LIVE_CLAIM_STATUSES = {ItemStatus.FROZEN.value, ItemStatus.SENDING.value, ItemStatus.PAID.value}


class _Item(NamedTuple):
    status: str
    amount: int | None
    owner_type: str
    owner_id: uuid.UUID
    currency: str


def _finding(detail: str) -> AuditFinding:
    return AuditFinding(CHECK, detail)


# What each kind must post, as {(owner is the payee?, purpose): sign}; X is the item's amount.
EXPECTED_LEGS: dict[str, dict[tuple[bool, str], int]] = {
    KIND_FREEZE: {(True, AVAILABLE): -1, (True, IN_TRANSIT): 1},
    KIND_PAID: {(True, IN_TRANSIT): -1, (False, PAID_OUT): 1},
    KIND_FAILED: {(True, IN_TRANSIT): -1, (True, AVAILABLE): 1},
}
EXPECTED_KINDS: dict[str, set[str]] = {
    ItemStatus.QUEUED.value: set(),
    ItemStatus.SKIPPED.value: set(),
    ItemStatus.FROZEN.value: {KIND_FREEZE},
    ItemStatus.SENDING.value: {KIND_FREEZE},
    ItemStatus.PAID.value: {KIND_FREEZE, KIND_PAID},
    ItemStatus.FAILED.value: {KIND_FREEZE, KIND_FAILED},
}


def check_payouts(session: Session) -> Iterator[AuditFinding]:
    rows = session.execute(
        select(PayoutItem.id, PayoutItem.status, PayoutItem.amount, PayoutItem.owner_type, PayoutItem.owner_id,
               PayoutItem.currency)
    )
    items = {str(row[0]): _Item(*row[1:]) for row in rows}
    yield from _check_postings(session, items)
    yield from _check_in_transit(session)
    yield from _check_claims(session, items)
    yield from _check_recoveries(session, items)


def _check_postings(session: Session, items: dict[str, _Item]) -> Iterator[AuditFinding]:
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    legs: dict[tuple[str, str], dict[tuple[bool, str], int]] = defaultdict(dict)
    rows = session.execute(
        select(JournalTransaction.id, JournalTransaction.kind, JournalTransaction.reference_id,
               JournalEntry.owner_type, JournalEntry.owner_id, JournalEntry.purpose, JournalEntry.amount)
        .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
        .where(JournalTransaction.kind.in_(PAYOUT_KINDS))
    ).all()
    counted: set[object] = set()
    for txn_id, kind, reference, owner_type, owner_id, purpose, amount in rows:
        if txn_id not in counted:
            counted.add(txn_id)
            kinds[reference][kind] += 1
        item = items.get(reference)
        if item is None:
            continue
        is_payee = (owner_type, owner_id) == (item.owner_type, item.owner_id)
        if not is_payee and owner_type != PLATFORM:
            yield _finding(f"{kind} of item {reference} posts to {owner_type} {owner_id}, not to its payee")
            continue
        leg = legs[(reference, kind)]
        leg[(is_payee, purpose)] = leg.get((is_payee, purpose), 0) + int(amount)
    for reference in kinds.keys() - items.keys():
        yield _finding(f"payout postings {dict(kinds[reference])} name no payout item ({reference})")
    for reference, item in items.items():
        status, amount = item.status, item.amount or 0
        posted = kinds.get(reference, Counter())
        for kind, count in posted.items():
            if count > 1:
                yield _finding(f"item {reference} has {count} {kind} postings")
        if set(posted) != EXPECTED_KINDS[status]:
            yield _finding(f"item {reference} is {status} but has postings {sorted(posted)}; "
                           f"expected {sorted(EXPECTED_KINDS[status])}")
        for kind in posted:
            expected = {leg: sign * amount for leg, sign in EXPECTED_LEGS[kind].items()}
            if legs.get((reference, kind), {}) != expected:
                yield _finding(f"{kind} of item {reference} posts {legs.get((reference, kind))}, "
                               f"not {amount} as its state requires")


def _check_in_transit(session: Session) -> Iterator[AuditFinding]:
    journal: dict[tuple[str, object, str], int] = {
        (t, i, c): int(total) for t, i, c, total in session.execute(
            select(JournalEntry.owner_type, JournalEntry.owner_id, JournalEntry.currency, func.sum(JournalEntry.amount))
            .where(JournalEntry.purpose == IN_TRANSIT, JournalEntry.owner_type.in_((SELLER, AFFILIATE)))
            .group_by(JournalEntry.owner_type, JournalEntry.owner_id, JournalEntry.currency)
        )
    }
    frozen: dict[tuple[str, object, str], int] = {
        (t, i, c): int(total or 0) for t, i, c, total in session.execute(
            select(PayoutItem.owner_type, PayoutItem.owner_id, PayoutItem.currency, func.sum(PayoutItem.amount))
            .where(PayoutItem.status.in_(IN_FLIGHT_ITEM_STATUSES))
            .group_by(PayoutItem.owner_type, PayoutItem.owner_id, PayoutItem.currency)
        )
    }
    for key in journal.keys() | frozen.keys():
        if journal.get(key, 0) != frozen.get(key, 0):
            yield _finding(f"{key[0]} {key[1]} has {journal.get(key, 0)} {key[2]} in transit, but its frozen "
                           f"unsettled payout items sum to {frozen.get(key, 0)}")


def _check_claims(session: Session, items: dict[str, _Item]) -> Iterator[AuditFinding]:
    for commission_id, affiliate_id, currency, status, item_id in session.execute(
        select(Commission.id, Commission.affiliate_id, Commission.currency, Commission.status,
               Commission.payout_item_id)
        .where((Commission.payout_item_id.is_not(None)) | (Commission.status == CommissionStatus.PAID))
    ):
        item = items.get(str(item_id)) if item_id is not None else None
        if item is None:
            yield _finding(f"commission {commission_id} is {status} but claimed by no payout item ({item_id})")
        elif (item.owner_type, item.owner_id, item.currency) != (AFFILIATE, affiliate_id, currency):
            yield _finding(f"commission {commission_id} is claimed by item {item_id} of another payee or currency")
        elif item.status not in LIVE_CLAIM_STATUSES:
            yield _finding(f"commission {commission_id} is claimed by item {item_id}, which is {item.status}")
    for sub_id, seller_id, currency, item_id in session.execute(
        select(SubOrder.id, SubOrder.seller_id, SubOrder.currency, SubOrder.payout_item_id)
        .where(SubOrder.payout_item_id.is_not(None))
    ):
        item = items.get(str(item_id))
        if item is None:
            yield _finding(f"sub-order {sub_id} is claimed by no payout item ({item_id})")
        elif (item.owner_type, item.owner_id, item.currency) != (SELLER, seller_id, currency):
            yield _finding(f"sub-order {sub_id} is claimed by item {item_id} of another payee or currency")
        elif item.status not in LIVE_CLAIM_STATUSES:
            yield _finding(f"sub-order {sub_id} is claimed by item {item_id}, which is {item.status}")


def _check_recoveries(session: Session, items: dict[str, _Item]) -> Iterator[AuditFinding]:
    """A recovered recovery has one `payout.recovered` transaction (platform paid_out -X, payee
    available +X); a pending or failed one has none; an item never gives back more than it paid."""
    posted: dict[str, dict[tuple[bool, str], int]] = defaultdict(dict)
    recoveries = {str(r.id): r for r in session.scalars(select(PayoutRecovery))}
    counted: dict[str, set[object]] = defaultdict(set)
    for txn_id, reference, owner_type, owner_id, purpose, amount in session.execute(
        select(JournalTransaction.id, JournalTransaction.reference_id, JournalEntry.owner_type,
               JournalEntry.owner_id, JournalEntry.purpose, JournalEntry.amount)
        .join(JournalEntry, JournalEntry.transaction_id == JournalTransaction.id)
        .where(JournalTransaction.kind == KIND_RECOVERED)
    ):
        counted[reference].add(txn_id)
        recovery = recoveries.get(reference)
        if recovery is None:
            yield _finding(f"payout.recovered posting names no recovery ({reference})")
            continue
        leg = (owner_type, owner_id) == (recovery.owner_type, recovery.owner_id), purpose
        posted[reference][leg] = posted[reference].get(leg, 0) + int(amount)
    given_back: Counter[str] = Counter()
    for reference, recovery in recoveries.items():
        if recovery.status != RecoveryStatus.FAILED:
            given_back[str(recovery.payout_item_id)] += recovery.amount
        if recovery.status == RecoveryStatus.RECOVERED:
            expected = {(True, AVAILABLE): recovery.amount, (False, PAID_OUT): -recovery.amount}
            if len(counted[reference]) != 1 or posted[reference] != expected:
                yield _finding(f"recovery {reference} is recovered but posts {posted.get(reference)} in "
                               f"{len(counted[reference])} transaction(s), not {recovery.amount} once")
        elif counted[reference]:
            yield _finding(f"recovery {reference} is {recovery.status} but has a payout.recovered posting")
    for item_id, amount in given_back.items():
        item = items.get(item_id)
        if item is None or item.status != ItemStatus.PAID.value or amount > (item.amount or 0):
            yield _finding(f"payout item {item_id} has recoveries of {amount}, more than it paid "
                           f"({item.amount if item else None}, {item.status if item else 'missing'})")


AUDIT_CHECKS: tuple[tuple[str, AuditCheck], ...] = ((CHECK, check_payouts),)
