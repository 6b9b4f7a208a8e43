"""The double-entry journal: the part that must never be wrong.

Every money movement is one `JournalTransaction` whose `JournalEntry` rows sum to zero per
currency. Rows are only ever inserted: a correction or refund is a new transaction, and the ORM
refuses updates and deletes (PostgreSQL also has a trigger, see the migration).

Accounts are not rows of their own: an account is the triple (owner_type, owner_id, purpose)
plus a currency, so posting needs no look-up.

Balances are kept flat (issue 18): `ledger_balances` holds each account's balance and entry
count, maintained by `post_many` (the one function that writes journal entries) in the same
database transaction, so a balance read costs the same at 1,000 orders as at 1,000,000. How it
stays exact and deadlock-free:

- `post_many` notes each account's change in the session; the changes are added to the table
  once, at the commit of the outermost transaction (`before_commit`), in one upsert whose rows
  are sorted by account: every transaction locks balance rows in the same order, and last
  (`ledger_balances` is the last place of the global lock order, kernel.locking), so two
  transactions that post to the same accounts in opposite orders (the release job, a refund)
  never wait for each other in a cycle, and the rows are held only for the commit.
- A savepoint rolled back takes its changes back with it (`after_soft_rollback`).
- An account has `BALANCE_SHARDS` rows; each commit adds to one of them, chosen at random, so
  hot accounts (the platform's clearing and fees, a busy seller) do not serialise every
  commit that posts to them. A balance is the sum of an account's rows.
- Reads in the posting session add the changes it has not committed yet.
- The audit (`check_balance_table`) recomputes every account from the journal and compares.

Sign convention (the platform's books, liability view): a positive amount credits the account,
a negative amount debits it. So a payee's balance in an account is the sum of its entries, and
money the platform received from buyers shows as a negative `platform/clearing` balance.

A posting of kind K for a reference R happens at most once: UNIQUE(kind, reference_type,
reference_id) makes "paid twice" a database error instead of a bug to reason about.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    bindparam,
    event,
    func,
    insert,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column

from kernel.clock import clock
from kernel.db import Base, new_id, new_ids
from kernel.pgsql import insert_rows, json_rows

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


# The balance table's owner id for accounts without an owner (the platform's; NULL in the journal).
NO_OWNER = uuid.UUID(int=0)
BALANCE_SHARDS = 8


class LedgerBalance(Base):
    """An account's balance (minor units) and number of entries, split over `BALANCE_SHARDS`
    rows: the sum of its rows equals the sum of its journal entries (see the module docstring)."""

    __tablename__ = "ledger_balances"
    __table_args__ = (
        # The payout planning reads every payee's `available` balance in one currency.
        Index("ix_ledger_balances_purpose", "purpose", "currency", "owner_type", "owner_id", "balance"),
    )

    owner_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # NO_OWNER for the platform
    purpose: Mapped[str] = mapped_column(String(16), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    entries: Mapped[int] = mapped_column(BigInteger)


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


@dataclass(frozen=True, slots=True)
class Transaction:
    """One journal transaction to write with `post_many` (`post`'s arguments as a value)."""

    kind: str
    reference_type: str
    reference_id: str | uuid.UUID
    currency: str
    postings: Sequence[Posting]
    order_id: uuid.UUID | None = None
    memo: str | None = None


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
    return post_many(session, [Transaction(kind, reference_type, reference_id, currency, postings, order_id, memo)])[0]


def post_many(session: Session, transactions: Sequence[Transaction]) -> list[uuid.UUID]:
    """Write balanced journal transactions: two multi-row INSERT statements however many (a
    10,000-payee payout batch posts 20,000). The only writer of journal entries, so the one place
    that keeps `ledger_balances` (the changes are added at commit: `_note_changes`). UNIQUE(kind,
    reference) refuses any second posting. Returns the transactions' ids, in order."""
    now = clock.now()
    checked: list[tuple[Transaction, list[Posting]]] = []
    for txn in transactions:
        lines = [p for p in txn.postings if p.amount != 0]
        if not lines:
            raise LedgerError(f"{txn.kind} for {txn.reference_type} {txn.reference_id} has no non-zero postings")
        if any(isinstance(p.amount, bool) or not isinstance(p.amount, int) for p in lines):
            raise LedgerError("posting amounts must be integers (minor units)")
        total = sum(p.amount for p in lines)
        if total != 0:
            raise LedgerError(f"{txn.kind} for {txn.reference_type} {txn.reference_id} is unbalanced by {total}")
        checked.append((txn, lines))
    fresh = iter(new_ids(len(checked) + sum(len(lines) for _, lines in checked)))
    ids: list[uuid.UUID] = []
    headers: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for txn, lines in checked:
        txn_id = next(fresh)
        ids.append(txn_id)
        headers.append({
            "id": txn_id, "kind": txn.kind, "reference_type": txn.reference_type,
            "reference_id": str(txn.reference_id), "currency": txn.currency, "order_id": txn.order_id,
            "memo": txn.memo, "created_at": now,
        })
        entries.extend(
            {
                "id": next(fresh), "transaction_id": txn_id, "owner_type": p.owner_type,
                "owner_id": p.owner_id, "purpose": p.purpose, "currency": txn.currency,
                "amount": p.amount, "source_type": p.source_type, "source_id": p.source_id,
                "created_at": now,
            }
            for p in lines
        )
    if not headers:
        return ids
    if len(entries) >= BULK_ROWS and session.get_bind().dialect.name == "postgresql":
        # A payout chunk posts thousands of rows: each table's rows go as ONE JSON parameter
        # (`INSERT ... SELECT FROM json_populate_recordset`), instead of psycopg's executemany,
        # which sends one INSERT per row (issue 18: 7.9 of 28 s of a 3,000-payee run).
        insert_rows(session, JournalTransaction.__table__, headers)  # type: ignore[arg-type]
        insert_rows(session, JournalEntry.__table__, entries)  # type: ignore[arg-type]
    else:
        session.execute(insert(JournalTransaction), headers)
        # render_nulls: the platform's entries have owner_id NULL; without it the ORM splits the rows
        # at every change of "which keys are None" and sends one INSERT per entry.
        session.execute(insert(JournalEntry).execution_options(render_nulls=True), entries)
    _note_changes(session, entries)
    return ids


# From this many entries in one `post_many` call, PostgreSQL gets the rows as one JSON parameter
# (the checkout's and settlement's few-row posts keep their plain INSERTs: the load floor replays them).
BULK_ROWS = 64


# --- the balance table: changes noted per session, added at commit ------------------------------

AccountKey = tuple[str, uuid.UUID, str, str]  # owner_type, owner_id (NO_OWNER: none), purpose, currency
Changes = dict[AccountKey, list[int]]  # account -> [amount, entries]
_PENDING = "kernel.ledger.pending"  # session.info: [(the savepoints it was posted in, Changes)]
_LISTENING = "kernel.ledger.listening"


def _note_changes(session: Session, entries: Iterable[dict[str, Any]]) -> None:
    changes: Changes = {}
    for e in entries:
        key = (e["owner_type"], e["owner_id"] or NO_OWNER, e["purpose"], e["currency"])
        change = changes.setdefault(key, [0, 0])
        change[0] += e["amount"]
        change[1] += 1
    innermost = session.get_nested_transaction() or session.get_transaction()
    chain: list[SessionTransaction] = []
    while innermost is not None:
        chain.append(innermost)
        innermost = innermost.parent
    session.info.setdefault(_PENDING, []).append((tuple(chain), changes))
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        event.listen(session, "before_commit", _add_changes_at_commit)
        event.listen(session, "after_soft_rollback", _drop_rolled_back)
        event.listen(session, "after_transaction_end", _forget_at_end)


def pending_changes(session: Session) -> dict[AccountKey, int]:
    """What this session posted and has not committed yet, per account (minor units)."""
    totals: dict[AccountKey, int] = defaultdict(int)
    for _chain, changes in session.info.get(_PENDING, ()):
        for key, (amount, _count) in changes.items():
            totals[key] += amount
    return totals


def _add_changes_at_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint's release: its changes wait for the outermost commit
    pending = session.info.get(_PENDING)
    if not pending:
        return
    session.flush()  # every other row this transaction writes is locked before the balance rows
    totals: Changes = {}
    for _chain, changes in pending:
        for key, (amount, count) in changes.items():
            total = totals.setdefault(key, [0, 0])
            total[0] += amount
            total[1] += count
    session.info[_PENDING] = []
    shard = random.randrange(BALANCE_SHARDS)  # spreads the rows; not a secret
    rows = [
        {"owner_type": k[0], "owner_id": k[1], "purpose": k[2], "currency": k[3], "shard": shard,
         "balance": amount, "entries": count}
        for k, (amount, count) in totals.items()
    ]
    if session.get_bind().dialect.name == "postgresql":
        # One statement for any number of rows (a payout chunk changes hundreds of accounts),
        # locking them in the order of its ORDER BY (the key's): the one order of every writer.
        session.execute(_balance_upsert_pg(), {"rows": orjson.dumps(rows).decode()})
    else:  # SQLite: one writer at a time; the same order all the same
        session.execute(_adding(sqlite.insert(LedgerBalance)), sorted(rows, key=_key_order))


_BALANCE_KEY = ["owner_type", "owner_id", "purpose", "currency", "shard"]


def _key_order(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in _BALANCE_KEY)


def _adding(stmt: Any) -> Any:
    """An INSERT into the balance table that adds to the row already there."""
    return stmt.on_conflict_do_update(
        index_elements=_BALANCE_KEY,
        set_={"balance": LedgerBalance.balance + stmt.excluded.balance,
              "entries": LedgerBalance.entries + stmt.excluded.entries},
    )


@lru_cache(maxsize=1)
def _balance_upsert_pg() -> Any:
    names = [*_BALANCE_KEY, "balance", "entries"]
    rows = json_rows(LedgerBalance.__table__, "rows", "b")  # type: ignore[arg-type]
    source = select(*(rows.c[name] for name in names)).order_by(*(rows.c[name] for name in _BALANCE_KEY))
    table = LedgerBalance.__table__  # Core: the ORM would read the JSON parameter as column values
    return _adding(postgresql.insert(table).from_select(names, source))  # type: ignore[arg-type]


def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [(chain, ch) for chain, ch in pending if previous_transaction not in chain]


def _forget_at_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


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


def _owner(owner_id: uuid.UUID) -> uuid.UUID | None:
    return None if owner_id == NO_OWNER else owner_id


def balances(
    session: Session, *, owner_type: str | None = None, owner_id: uuid.UUID | None = None,
    currency: str | None = None, purpose: str | None = None,
) -> list[AccountBalance]:
    """Every account's balance (minor units), from `ledger_balances` plus what this session posted
    and has not committed; an account appears once it has had an entry. `owner_id=NO_OWNER`: the
    platform's accounts."""
    stmt = select(
        LedgerBalance.owner_type, LedgerBalance.owner_id, LedgerBalance.purpose, LedgerBalance.currency,
        func.sum(LedgerBalance.balance),
    ).group_by(LedgerBalance.owner_type, LedgerBalance.owner_id, LedgerBalance.purpose, LedgerBalance.currency)
    if owner_type is not None:
        stmt = stmt.where(LedgerBalance.owner_type == owner_type)
    if owner_id is not None:
        stmt = stmt.where(LedgerBalance.owner_id == owner_id)
    if currency is not None:
        stmt = stmt.where(LedgerBalance.currency == currency)
    if purpose is not None:
        stmt = stmt.where(LedgerBalance.purpose == purpose)
    totals: dict[AccountKey, int] = {(r[0], r[1], r[2], r[3]): int(r[4]) for r in session.execute(stmt)}
    for key, amount in pending_changes(session).items():
        if ((owner_type is None or key[0] == owner_type) and (owner_id is None or key[1] == owner_id)
                and (purpose is None or key[2] == purpose) and (currency is None or key[3] == currency)):
            totals[key] = totals.get(key, 0) + amount
    return [AccountBalance(t, _owner(i), p, c, amount) for (t, i, p, c), amount in totals.items()]


def balance_of(session: Session, owner_type: str, owner_id: uuid.UUID | None, purpose: str, currency: str) -> int:
    return sum(b.amount for b in balances(session, owner_type=owner_type, owner_id=owner_id or NO_OWNER,
                                          purpose=purpose, currency=currency))


def owner_balances(
    session: Session, purpose: str, owner_types: Sequence[str], *, currency: str | None = None,
    owner_ids: Iterable[uuid.UUID] | None = None,
) -> dict[tuple[str, uuid.UUID, str], int]:
    """{(owner_type, owner_id, currency): balance} of one purpose for the owners of `owner_types`
    (of `owner_ids` only, when given: read 1,000 at a time), as `balances` reads them."""
    stmt = (
        select(LedgerBalance.owner_type, LedgerBalance.owner_id, LedgerBalance.currency,
               func.sum(LedgerBalance.balance))
        .where(LedgerBalance.purpose == purpose, LedgerBalance.owner_type.in_(owner_types))
        .group_by(LedgerBalance.owner_type, LedgerBalance.owner_id, LedgerBalance.currency)
    )
    if currency is not None:
        stmt = stmt.where(LedgerBalance.currency == currency)
    wanted = None if owner_ids is None else list(set(owner_ids))
    totals: dict[tuple[str, uuid.UUID, str], int] = {}
    if wanted is not None and session.get_bind().dialect.name == "postgresql":
        # A payout chunk asks for thousands of owners: one array parameter, each owner looked up
        # by its key (a lateral probe of the index), never a scan of every owner's balances
        # filtered by the list, which a planner with stale statistics picks for `= ANY(list)`.
        for owner_type in owner_types:
            for i, c, total in session.execute(_owners_balances_pg(currency is not None),
                                               {"owners": wanted, "owner_type": owner_type, "purpose": purpose,
                                                "currency": currency}):
                totals[(owner_type, i, c)] = int(total)
        chunks: list[Any] = []
    elif wanted is None:
        chunks = [stmt]
    else:
        chunks = [stmt.where(LedgerBalance.owner_id.in_(wanted[i:i + 1000])) for i in range(0, len(wanted), 1000)]
    for chunk in chunks:
        totals.update({(t, i, c): int(total) for t, i, c, total in session.execute(chunk)})
    among = None if wanted is None else set(wanted)
    for (t, i, p, c), amount in pending_changes(session).items():
        if p == purpose and t in owner_types and (currency is None or c == currency) and (among is None or i in among):
            totals[(t, i, c)] = totals.get((t, i, c), 0) + amount
    return totals


@lru_cache(maxsize=2)
def _owners_balances_pg(one_currency: bool) -> Any:
    owners = func.unnest(bindparam("owners", type_=ARRAY(Uuid()))).table_valued("id").render_derived(name="w")
    conditions = [LedgerBalance.owner_type == bindparam("owner_type"), LedgerBalance.owner_id == owners.c.id,
                  LedgerBalance.purpose == bindparam("purpose")]
    if one_currency:
        conditions.append(LedgerBalance.currency == bindparam("currency"))
    balance = (select(LedgerBalance.currency, func.sum(LedgerBalance.balance).label("total"))
               .where(*conditions).group_by(LedgerBalance.currency).lateral("b"))
    return select(owners.c.id, balance.c.currency, balance.c.total).select_from(owners.join(balance, true()))


def journal_balances(session: Session) -> dict[AccountKey, tuple[int, int]]:
    """Every account's balance and entry count summed from the journal itself (the audit's
    reference: a full pass over the entries)."""
    stmt = select(
        JournalEntry.owner_type, JournalEntry.owner_id, JournalEntry.purpose, JournalEntry.currency,
        func.sum(JournalEntry.amount), func.count(),
    ).group_by(JournalEntry.owner_type, JournalEntry.owner_id, JournalEntry.purpose, JournalEntry.currency)
    return {(t, i or NO_OWNER, p, c): (int(total), int(count)) for t, i, p, c, total, count in session.execute(stmt)}


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
    """Every currency's accounts sum to zero. Read from the balance table (no pass over the journal):
    `check_balance_table` proves the table equals the journal, so together they prove it of the journal."""
    totals: dict[str, int] = defaultdict(int)
    for bal in balances(session):
        totals[bal.currency] += bal.amount
    for currency, total in totals.items():
        if total != 0:
            yield AuditFinding("books_balance", f"all {currency} accounts sum to {total}, not 0")


def check_balance_table(session: Session) -> Iterable[AuditFinding]:
    """`ledger_balances` holds, for every account, the sum and the count of its journal entries."""
    table = {
        (t, i, p, c): (int(total), int(count))
        for t, i, p, c, total, count in session.execute(
            select(LedgerBalance.owner_type, LedgerBalance.owner_id, LedgerBalance.purpose, LedgerBalance.currency,
                   func.sum(LedgerBalance.balance), func.sum(LedgerBalance.entries))
            .group_by(LedgerBalance.owner_type, LedgerBalance.owner_id, LedgerBalance.purpose, LedgerBalance.currency)
        )
    }
    journal = journal_balances(session)
    for key in sorted(journal.keys() | table.keys()):
        held, want = table.get(key, (0, 0)), journal.get(key, (0, 0))
        if held != want:
            owner_type, owner_id, purpose, currency = key
            owner = f"{owner_type} {owner_id}" if owner_id != NO_OWNER else owner_type
            yield AuditFinding(
                "balance_table_matches_journal",
                f"{owner} {purpose} {currency}: the balance table holds {held[0]} in {held[1]} entries, "
                f"the journal {want[0]} in {want[1]}",
            )


AUDIT_CHECKS: tuple[tuple[str, AuditCheck], ...] = (
    ("transactions_balance", check_transactions_balance),
    ("entries_match_transaction_currency", check_entry_currency),
    ("books_balance", check_books_balance),
    ("balance_table_matches_journal", check_balance_table),
)


def run_audit(session: Session, checks: Iterable[tuple[str, AuditCheck]]) -> list[AuditFinding]:
    """Every finding of every check in `checks` ((name, check) pairs), in order."""
    findings: list[AuditFinding] = []
    for _name, check in checks:
        findings.extend(check(session))
    return findings
