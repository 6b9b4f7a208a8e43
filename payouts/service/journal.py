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
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kernel import ledger, locking, pgsql
from kernel.ledger import AFFILIATE, AVAILABLE, IN_TRANSIT, PAID_OUT, PLATFORM, SELLER, Posting
from orders.models import Commission, CommissionStatus, SubOrder
from orders.service.states import COMMISSIONS
from payouts.models import KIND_FAILED, KIND_FREEZE, KIND_PAID, REFERENCE_TYPE, PayoutItem
from payouts.service.payees import PayeeKey, among


def available_balances(session: Session, currency: str, keys: Iterable[PayeeKey] | None = None) -> dict[PayeeKey, int]:
    """Payees' `available` balances in `currency` (minor units; negative after a clawback), from the
    ledger's balance table (kernel.ledger.owner_balances: flat, whatever the history). Without
    `keys`: every payee whose balance is not zero."""
    if keys is None:
        found = ledger.owner_balances(session, AVAILABLE, (SELLER, AFFILIATE), currency=currency)
        return {(t, i): amount for (t, i, _c), amount in found.items() if amount}
    wanted = list(keys)
    found = ledger.owner_balances(session, AVAILABLE, (SELLER, AFFILIATE), currency=currency,
                                  owner_ids=[i for _, i in wanted])
    return {key: found.get((key[0], key[1], currency), 0) for key in wanted}


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
    postgres = pgsql.is_postgres(session)
    if seller_ids:
        stmts[SELLER] = select(SubOrder.id, SubOrder.seller_id).where(
            among(SubOrder.seller_id, seller_ids, postgres), SubOrder.currency == currency,
            SubOrder.seller_share_released.is_(True), SubOrder.payout_item_id.is_(None),
        )
    if affiliate_ids:
        stmts[AFFILIATE] = select(Commission.id, Commission.affiliate_id).where(
            among(Commission.affiliate_id, affiliate_ids, postgres), Commission.currency == currency,
            Commission.status == CommissionStatus.AVAILABLE, Commission.payout_item_id.is_(None),
        )
    for owner_type, rows in zip(stmts, locking.lock_all(session, list(stmts.values())), strict=True):
        for row_id, owner_id in rows:
            claimable[(owner_type, owner_id)].append(row_id)
    return claimable


class ItemFacts(Protocol):
    """What a posting needs of an item: a loaded `PayoutItem`, or a row of its columns (the
    run's set-based steps read columns, not objects)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def batch_id(self) -> uuid.UUID: ...
    @property
    def owner_type(self) -> str: ...
    @property
    def owner_id(self) -> uuid.UUID: ...
    @property
    def currency(self) -> str: ...
    @property
    def amount(self) -> int | None: ...
    @property
    def rail(self) -> str: ...
    @property
    def rail_reference(self) -> str | None: ...
    @property
    def failure_reason(self) -> str | None: ...


def _source(item: ItemFacts, owner: str | None, purpose: str, amount: int) -> Posting:
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


def freeze_txn(item: ItemFacts, amount: int) -> Txn:
    """`amount` (minor units, > 0) of the payee's available balance into in_transit."""
    return Txn(KIND_FREEZE, item.id, item.currency, f"payout batch {item.batch_id}",
               (_source(item, None, AVAILABLE, -amount), _source(item, None, IN_TRANSIT, amount)))


def paid_txn(item: ItemFacts) -> Txn:
    assert item.amount is not None
    return Txn(KIND_PAID, item.id, item.currency, f"{item.rail} {item.rail_reference}"[:200],
               (_source(item, None, IN_TRANSIT, -item.amount), _source(item, PLATFORM, PAID_OUT, item.amount)))


def failed_txn(item: ItemFacts) -> Txn:
    """The frozen amount back to the payee's available balance."""
    assert item.amount is not None
    return Txn(KIND_FAILED, item.id, item.currency, (item.failure_reason or "failed")[:200],
               (_source(item, None, IN_TRANSIT, -item.amount), _source(item, None, AVAILABLE, item.amount)))


def write(session: Session, txns: Sequence[Txn]) -> None:
    """Write payout transactions: a whole chunk in one `ledger.post_many` (two multi-row INSERT
    statements instead of two per transaction: a 10,000-payee batch posts 20,000 transactions).
    UNIQUE(kind, reference) still refuses any second posting of an item."""
    ledger.post_many(session, [
        ledger.Transaction(txn.kind, REFERENCE_TYPE, txn.item_id, txn.currency, txn.postings, memo=txn.memo)
        for txn in txns
    ])


CLAIM_SLICE = 10_000  # ids per statement: below SQLite's bound-parameter limit


def claim_all(session: Session, batch_id: uuid.UUID, claims: dict[PayeeKey, list[uuid.UUID]]) -> None:
    """Mark what a chunk's frozen items cover (`claims` per payee, locked by `lock_claimable`):
    one UPDATE per table (per 10,000 rows), each row pointed at its payee's item of the batch
    (UNIQUE(batch_id, owner_type, owner_id): a correlated look-up by that key)."""
    for owner_type, model in ((SELLER, SubOrder), (AFFILIATE, Commission)):  # the lock order's
        ids = [row_id for (kind, _), rows in claims.items() if kind == owner_type for row_id in rows]
        owner = Commission.affiliate_id if owner_type == AFFILIATE else SubOrder.seller_id
        item_of_payee = select(PayoutItem.id).where(
            PayoutItem.batch_id == batch_id, PayoutItem.owner_type == owner_type, PayoutItem.owner_id == owner,
        ).scalar_subquery()
        for start in range(0, len(ids), CLAIM_SLICE):
            part = ids[start:start + CLAIM_SLICE]
            where = model.id.in_(part)
            if owner_type == AFFILIATE:
                COMMISSIONS.move_all(session, CommissionStatus.PAID, where, from_=CommissionStatus.AVAILABLE,
                                     expected=len(part), values={"payout_item_id": item_of_payee},
                                     synchronize=False)
            else:
                session.execute(
                    update(SubOrder).where(where).values(payout_item_id=item_of_payee)
                    .execution_options(synchronize_session=False)
                )


def release_claims(session: Session, item: ItemFacts) -> None:
    """A failed item gives back what it claimed, so the next payout covers it."""
    if item.owner_type == AFFILIATE:
        COMMISSIONS.move_all(session, CommissionStatus.AVAILABLE, Commission.payout_item_id == item.id,
                             from_=CommissionStatus.PAID, values={"payout_item_id": None}, synchronize=False)
    else:
        session.execute(
            update(SubOrder).where(SubOrder.payout_item_id == item.id).values(payout_item_id=None)
            .execution_options(synchronize_session=False)
        )
