"""The payout postings in the journal, and the claims a freeze makes on commissions and sales.

Journal transactions, one of each kind per payout item at most (UNIQUE(kind, reference)), with
reference ("payout_item", item.id) and every entry's source ("payout_item", item.id):

- `payout.freeze`: payee `available` -X, payee `in_transit` +X (X = the payee's whole available
  balance at freeze time, minor units).
- `payout.paid`: payee `in_transit` -X, platform `paid_out` +X (the rail confirmed it).
- `payout.failed`: payee `in_transit` -X, payee `available` +X (the rail refused it; the money is
  back on the balance and the item keeps the reason).

Claims: a freeze marks what the payout covers, so a payee can see it per payout. An affiliate's
commissions with status `available` and no payout become `paid` with `payout_item_id` set; a
seller's released sub-orders with no payout get `payout_item_id`. A failed item gives its claims
back (commissions to `available`, sub-orders unclaimed) so the next payout covers them. The
commission moves are orders.service.states' (`available -> paid -> available`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from kernel import locking
from kernel.clock import clock
from kernel.db import new_id
from kernel.ledger import (
    AFFILIATE,
    AVAILABLE,
    IN_TRANSIT,
    PAID_OUT,
    PLATFORM,
    SELLER,
    JournalEntry,
    JournalTransaction,
    LedgerError,
    Posting,
)
from orders.models import Commission, CommissionStatus, SubOrder
from orders.service.states import COMMISSIONS
from payouts.models import KIND_FAILED, KIND_FREEZE, KIND_PAID, REFERENCE_TYPE, PayoutItem
from payouts.service.payees import PayeeKey


def available_balances(session: Session, currency: str, keys: Iterable[PayeeKey] | None = None) -> dict[PayeeKey, int]:
    """Payees' `available` balances in `currency` (minor units; negative after a clawback), from the
    journal in one grouped query. Without `keys`: every payee whose balance is not zero."""
    stmt = (
        select(JournalEntry.owner_type, JournalEntry.owner_id, func.sum(JournalEntry.amount))
        .where(JournalEntry.purpose == AVAILABLE, JournalEntry.currency == currency,
               JournalEntry.owner_type.in_((SELLER, AFFILIATE)))
        .group_by(JournalEntry.owner_type, JournalEntry.owner_id)
    )
    if keys is None:
        return {(t, i): int(total) for t, i, total in session.execute(stmt) if total and i is not None}
    wanted = list(keys)
    balances = dict.fromkeys(wanted, 0)
    ids = list({owner_id for _, owner_id in wanted})
    for start in range(0, len(ids), 1000):
        for owner_type, owner_id, total in session.execute(
            stmt.where(JournalEntry.owner_id.in_(ids[start:start + 1000]))
        ):
            if owner_id is not None and (owner_type, owner_id) in balances:
                balances[(owner_type, owner_id)] = int(total or 0)
    return balances


def lock_claimable(session: Session, currency: str, keys: Iterable[PayeeKey]) -> dict[PayeeKey, list[uuid.UUID]]:
    """Lock (`FOR UPDATE`, in the global lock order: kernel.locking) what a freeze of these payees
    will claim: sellers' released unclaimed sub-orders and affiliates' available unclaimed
    commissions.

    Why lock before reading the balance: the settlement and refund code update these rows when
    money moves between pending and available, so holding them keeps the claimed set and the frozen
    balance describing the same money for the rest of this transaction.
    """
    wanted = list(keys)
    claimable: dict[PayeeKey, list[uuid.UUID]] = {key: [] for key in wanted}
    affiliate_ids = [i for t, i in wanted if t == AFFILIATE]
    seller_ids = [i for t, i in wanted if t == SELLER]
    stmts: dict[str, locking.AnySelect] = {}
    if seller_ids:
        stmts[SELLER] = select(SubOrder.id, SubOrder.seller_id).where(
            SubOrder.seller_id.in_(seller_ids), SubOrder.currency == currency,
            SubOrder.seller_share_released.is_(True), SubOrder.payout_item_id.is_(None),
        )
    if affiliate_ids:
        stmts[AFFILIATE] = select(Commission.id, Commission.affiliate_id).where(
            Commission.affiliate_id.in_(affiliate_ids), Commission.currency == currency,
            Commission.status == CommissionStatus.AVAILABLE, Commission.payout_item_id.is_(None),
        )
    for owner_type, rows in zip(stmts, locking.lock_all(session, list(stmts.values())), strict=True):
        for row_id, owner_id in rows:
            claimable[(owner_type, owner_id)].append(row_id)
    return claimable


def _source(item: PayoutItem, owner: str | None, purpose: str, amount: int) -> Posting:
    owner_type = owner or item.owner_type
    owner_id = None if owner_type == PLATFORM else item.owner_id
    return Posting(owner_type, owner_id, purpose, amount, REFERENCE_TYPE, item.id)


@dataclass(frozen=True, slots=True)
class Txn:
    """One journal transaction to write for a payout item (reference ("payout_item", item_id))."""

    kind: str
    item_id: uuid.UUID
    currency: str
    memo: str
    postings: tuple[Posting, ...]


def freeze_txn(item: PayoutItem, amount: int) -> Txn:
    """`amount` (minor units, > 0) of the payee's available balance into in_transit."""
    return Txn(KIND_FREEZE, item.id, item.currency, f"payout batch {item.batch_id}",
               (_source(item, None, AVAILABLE, -amount), _source(item, None, IN_TRANSIT, amount)))


def paid_txn(item: PayoutItem) -> Txn:
    assert item.amount is not None
    return Txn(KIND_PAID, item.id, item.currency, f"{item.rail} {item.rail_reference}"[:200],
               (_source(item, None, IN_TRANSIT, -item.amount), _source(item, PLATFORM, PAID_OUT, item.amount)))


def failed_txn(item: PayoutItem) -> Txn:
    """The frozen amount back to the payee's available balance."""
    assert item.amount is not None
    return Txn(KIND_FAILED, item.id, item.currency, (item.failure_reason or "failed")[:200],
               (_source(item, None, IN_TRANSIT, -item.amount), _source(item, None, AVAILABLE, item.amount)))


def write(session: Session, txns: Sequence[Txn]) -> None:
    """Write payout transactions: the same rows and checks as `ledger.post`, but a whole chunk in
    two multi-row INSERT statements instead of two per transaction (a 10,000-payee batch posts
    20,000 transactions). UNIQUE(kind, reference) still refuses any second posting of an item."""
    if not txns:
        return
    now = clock.now()
    headers: list[dict[str, object]] = []
    entries: list[dict[str, object]] = []
    for txn in txns:
        lines = [p for p in txn.postings if p.amount != 0]
        if not lines or sum(p.amount for p in lines) != 0:
            raise LedgerError(f"{txn.kind} for payout item {txn.item_id} is empty or unbalanced")
        txn_id = new_id()
        headers.append({"id": txn_id, "kind": txn.kind, "reference_type": REFERENCE_TYPE,
                        "reference_id": str(txn.item_id), "currency": txn.currency, "order_id": None,
                        "memo": txn.memo, "created_at": now})
        entries.extend(
            {"id": new_id(), "transaction_id": txn_id, "owner_type": p.owner_type, "owner_id": p.owner_id,
             "purpose": p.purpose, "currency": txn.currency, "amount": p.amount, "source_type": p.source_type,
             "source_id": p.source_id, "created_at": now}
            for p in lines
        )
    session.execute(insert(JournalTransaction), headers)
    # render_nulls: the platform's entries have owner_id NULL; without it the ORM splits the rows
    # at every change of "which keys are None" and sends one INSERT per entry.
    session.execute(insert(JournalEntry).execution_options(render_nulls=True), entries)


def claim(session: Session, item: PayoutItem, claims: list[uuid.UUID]) -> None:
    """Mark what the frozen item covers (`claims`, locked by `lock_claimable`)."""
    if not claims:
        return
    if item.owner_type == AFFILIATE:
        COMMISSIONS.move_all(session, CommissionStatus.PAID, Commission.id.in_(claims),
                             from_=CommissionStatus.AVAILABLE, expected=len(claims),
                             values={"payout_item_id": item.id}, synchronize=False)
    else:
        session.execute(
            update(SubOrder).where(SubOrder.id.in_(claims)).values(payout_item_id=item.id)
            .execution_options(synchronize_session=False)
        )


def release_claims(session: Session, item: PayoutItem) -> None:
    """A failed item gives back what it claimed, so the next payout covers it."""
    if item.owner_type == AFFILIATE:
        COMMISSIONS.move_all(session, CommissionStatus.AVAILABLE, Commission.payout_item_id == item.id,
                             from_=CommissionStatus.PAID, values={"payout_item_id": None}, synchronize=False)
    else:
        session.execute(
            update(SubOrder).where(SubOrder.payout_item_id == item.id).values(payout_item_id=None)
            .execution_options(synchronize_session=False)
        )
