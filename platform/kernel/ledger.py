"""The double-entry journal: the part that must never be wrong.

Every money movement is one `JournalTransaction` whose `JournalEntry` rows sum to zero per
currency. Rows are only ever inserted: a correction or refund is a new transaction, and the ORM
refuses updates and deletes (PostgreSQL also has a trigger, see the migration).

Accounts are not rows of their own: an account is the triple (owner_type, owner_id, purpose)
plus a currency, so posting needs no look-up and balances are plain sums.

Sign convention (the platform's books, liability view): a positive amount credits the account,
a negative amount debits it. So a payee's balance in an account is the sum of its entries, and
money the platform received from buyers shows as a negative `platform/clearing` balance.

A posting of kind K for a reference R happens at most once: UNIQUE(kind, reference_type,
reference_id) makes "paid twice" a database error instead of a bug to reason about.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, event, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.clock import clock
from kernel.db import Base, new_id

# Owner types and account purposes, as strings so every domain can name its own accounts.
PLATFORM = "platform"
SELLER = "seller"
AFFILIATE = "affiliate"

CLEARING = "clearing"  # platform: money collected from buyers, not yet settled to payees
FEES = "fees"  # platform: fee revenue
PENDING = "pending"  # payee: earned, inside the holding period
AVAILABLE = "available"  # payee: payable in the next payout
IN_TRANSIT = "in_transit"  # payee: frozen in a payout batch
PAID_OUT = "paid_out"  # platform: money that left through the payment rail
REFUNDS_OWED = "refunds_owed"  # platform: refunds the rail failed to return, owed to buyers until settled


class LedgerError(Exception):
    """A posting that would break the ledger's rules (unbalanced, empty, mixed currency)."""


class JournalTransaction(Base):
    __tablename__ = "journal_transactions"
    __table_args__ = (UniqueConstraint("kind", "reference_type", "reference_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(40))
    reference_type: Mapped[str] = mapped_column(String(40))
    reference_id: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    order_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    memo: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


class JournalEntry(Base):
    __tablename__ = "journal_entries"
    __table_args__ = (
        # Both end in `amount` so balance reads are index-only (migration 0014): an account's
        # entries, and every payee's entries of one purpose (the payout preview's `available`).
        Index("ix_journal_entries_account", "owner_type", "owner_id", "purpose", "currency", "amount"),
        Index("ix_journal_entries_purpose", "purpose", "currency", "owner_type", "owner_id", "amount"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    transaction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("journal_transactions.id"), index=True)
    owner_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[uuid.UUID | None] = mapped_column()
    purpose: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    # What the entry is about (an order line, a commission, a payout item): lets a payout
    # claim the rows it pays and lets a payee see what a payout covered.
    source_type: Mapped[str | None] = mapped_column(String(40))
    source_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


@event.listens_for(JournalTransaction, "before_update")
@event.listens_for(JournalEntry, "before_update")
@event.listens_for(JournalTransaction, "before_delete")
@event.listens_for(JournalEntry, "before_delete")
def _refuse_edits(*_args: Any) -> None:
    raise LedgerError("the journal is append-only: post a reversing transaction instead")


@dataclass(frozen=True, slots=True)
class Posting:
    owner_type: str
    owner_id: uuid.UUID | None
    purpose: str
    amount: int
    source_type: str | None = None
    source_id: uuid.UUID | None = None


def post(
    session: Session,
    *,
    kind: str,
    reference_type: str,
    reference_id: str | uuid.UUID,
    currency: str,
    postings: Sequence[Posting],
    order_id: uuid.UUID | None = None,
    memo: str | None = None,
) -> uuid.UUID:
    """Write one balanced journal transaction (two INSERT statements however many entries).

    Zero-amount postings are dropped; the rest must sum to exactly zero.
    """
    lines = [p for p in postings if p.amount != 0]
    if not lines:
        raise LedgerError(f"{kind} for {reference_type} {reference_id} has no non-zero postings")
    if any(isinstance(p.amount, bool) or not isinstance(p.amount, int) for p in lines):
        raise LedgerError("posting amounts must be integers (minor units)")
    total = sum(p.amount for p in lines)
    if total != 0:
        raise LedgerError(f"{kind} for {reference_type} {reference_id} is unbalanced by {total}")
    now = clock.now()
    txn_id = new_id()
    session.execute(
        insert(JournalTransaction),
        [{
            "id": txn_id, "kind": kind, "reference_type": reference_type,
            "reference_id": str(reference_id), "currency": currency, "order_id": order_id,
            "memo": memo, "created_at": now,
        }],
    )
    session.execute(
        insert(JournalEntry),
        [
            {
                "id": new_id(), "transaction_id": txn_id, "owner_type": p.owner_type,
                "owner_id": p.owner_id, "purpose": p.purpose, "currency": currency,
                "amount": p.amount, "source_type": p.source_type, "source_id": p.source_id,
                "created_at": now,
            }
            for p in lines
        ],
    )
    return txn_id


def already_posted(session: Session, *, kind: str, reference_type: str, reference_id: str | uuid.UUID) -> bool:
    return session.scalar(
        select(JournalTransaction.id).where(
            JournalTransaction.kind == kind,
            JournalTransaction.reference_type == reference_type,
            JournalTransaction.reference_id == str(reference_id),
        )
    ) is not None


@dataclass(frozen=True, slots=True)
class AccountBalance:
    owner_type: str
    owner_id: uuid.UUID | None
    purpose: str
    currency: str
    amount: int


def balances(
    session: Session, *, owner_type: str | None = None, owner_id: uuid.UUID | None = None,
    currency: str | None = None,
) -> list[AccountBalance]:
    """Balances derived from the journal: the sum of entries per account and currency."""
    stmt = select(
        JournalEntry.owner_type, JournalEntry.owner_id, JournalEntry.purpose, JournalEntry.currency,
        func.sum(JournalEntry.amount),
    ).group_by(JournalEntry.owner_type, JournalEntry.owner_id, JournalEntry.purpose, JournalEntry.currency)
    if owner_type is not None:
        stmt = stmt.where(JournalEntry.owner_type == owner_type)
    if owner_id is not None:
        stmt = stmt.where(JournalEntry.owner_id == owner_id)
    if currency is not None:
        stmt = stmt.where(JournalEntry.currency == currency)
    return [
        AccountBalance(row[0], row[1], row[2], row[3], int(row[4]))
        for row in session.execute(stmt).all()
    ]


def balance_of(session: Session, owner_type: str, owner_id: uuid.UUID | None, purpose: str, currency: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(JournalEntry.amount), 0)).where(
            JournalEntry.owner_type == owner_type,
            JournalEntry.owner_id == owner_id if owner_id is not None else JournalEntry.owner_id.is_(None),
            JournalEntry.purpose == purpose,
            JournalEntry.currency == currency,
        )
    )
    return int(total or 0)


# ---------------------------------------------------------------------------------------------
# Audit: the kernel checks the journal itself; each domain exports the invariants it owns as a
# plain tuple of (name, check) pairs (orders: buyer paid = shares + fee; payouts: nothing paid
# twice ...), and the composition root (marketplace.bootstrap) passes all of them to `run_audit`.

@dataclass(frozen=True, slots=True)
class AuditFinding:
    check: str
    detail: str


AuditCheck = Callable[[Session], Iterable[AuditFinding]]


def check_transactions_balance(session: Session) -> Iterable[AuditFinding]:
    rows = session.execute(
        select(JournalEntry.transaction_id, JournalEntry.currency, func.sum(JournalEntry.amount))
        .group_by(JournalEntry.transaction_id, JournalEntry.currency)
        .having(func.sum(JournalEntry.amount) != 0)
    ).all()
    for txn_id, currency, total in rows:
        yield AuditFinding("transactions_balance", f"transaction {txn_id} is off by {total} {currency}")


def check_entry_currency(session: Session) -> Iterable[AuditFinding]:
    rows = session.execute(
        select(JournalEntry.id, JournalEntry.currency, JournalTransaction.currency)
        .join(JournalTransaction, JournalTransaction.id == JournalEntry.transaction_id)
        .where(JournalEntry.currency != JournalTransaction.currency)
    ).all()
    for entry_id, entry_currency, txn_currency in rows:
        yield AuditFinding(
            "entries_match_transaction_currency",
            f"entry {entry_id} is {entry_currency} in a {txn_currency} transaction",
        )


def check_books_balance(session: Session) -> Iterable[AuditFinding]:
    totals: dict[str, int] = defaultdict(int)
    for bal in balances(session):
        totals[bal.currency] += bal.amount
    for currency, total in totals.items():
        if total != 0:
            yield AuditFinding("books_balance", f"all {currency} accounts sum to {total}, not 0")


AUDIT_CHECKS: tuple[tuple[str, AuditCheck], ...] = (
    ("transactions_balance", check_transactions_balance),
    ("entries_match_transaction_currency", check_entry_currency),
    ("books_balance", check_books_balance),
)


def run_audit(session: Session, checks: Iterable[tuple[str, AuditCheck]]) -> list[AuditFinding]:
    """Every finding of every check in `checks` ((name, check) pairs), in order."""
    findings: list[AuditFinding] = []
    for _name, check in checks:
        findings.extend(check(session))
    return findings
