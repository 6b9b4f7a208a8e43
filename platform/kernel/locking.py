"""The global lock order: the one place that says which rows a transaction may lock after which.

The rule: within one transaction, row locks are taken table by table in the order of
`LOCK_ORDER` (lower rank first), and within one table in primary-key order. Two transactions
that both follow it may wait for each other, but never in a cycle, so PostgreSQL never has to
break a deadlock by aborting one of them. (Issue 11: a refund and a payout freeze took
sub-orders and commissions in opposite orders; each module's docstring named only its own pair,
so nobody saw the cycle until it was found by hand.)

What takes a row lock, and so what the rule covers:

- `SELECT ... FOR UPDATE` (or `FOR NO KEY UPDATE`, `FOR SHARE`): the rows it returns, of the
  tables of its FROM clause (or those named by `OF`). Take these with `lock` / `lock_all` here:
  they order the rows by primary key and several tables by rank.
- `UPDATE t`, `DELETE FROM t`: the rows changed.
- `INSERT INTO t ... ON CONFLICT`: the conflicting row (`DO UPDATE` locks it; `DO NOTHING`
  waits for a transaction in flight that inserted the same key).

What it leaves out, and why that is safe:

- A plain INSERT: its rows are invisible to everybody else. It waits only for a transaction in
  flight that inserted the same unique key (a journal `(kind, reference)`, a refund's
  idempotency key), and each such key is inserted under a row lock that already serialises its
  writers (the order's, the payout item's).
- Rows the transaction locked already: an UPDATE of a table it locked before (a refund locks
  its order, then sets the order's refunded amount) takes no new lock. The convention that
  makes this true: a transaction changes only rows it locked first or inserted itself.
- A table locked under its guard (`Place.guarded_by`): every writer of an order line holds its
  order's row lock, so two transactions never wait for the same order line (one of them would
  be waiting for the order first).
- `SKIP LOCKED` and `NOWAIT` locks never wait, so they may be taken in any order. They count as
  held, though: a waiting lock taken after them must rank at least as high (another transaction
  may be waiting for them while it holds the row we want).
- A statement that locked no row (rowcount 0): nothing matched, nothing is held.

Within one table: primary-key order (`lock` orders by the key), and a multi-row upsert inserts
its rows sorted by the conflict key (`affiliates.service.sales.count_sales`).

`LockRecorder` checks the rule on a live engine: it reads every statement a transaction sends
(`after_cursor_execute`), notes each row lock it took (`row_locks`), and `violations()` lists
every waiting lock taken below the highest rank already held, and every lock on a table with no
place in the order (a new table that takes row locks must be given one here, with its reason).
Every test on PostgreSQL runs with a recorder on (tests/conftest.py) and fails on a violation;
tests/test_lock_order.py walks the paths that lock rows on purpose.

The kernel imports no domain, so the order is by table name; `lock` finds a statement's table in
the statement.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import Engine, Result, Row, Select, Table, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class Place:
    """A table's place in the lock order: `why` it sits there; `guarded_by`: a table every writer
    of this one has locked first (see the module docstring)."""

    table: str
    why: str
    guarded_by: str | None = None


# Lowest rank first.
LOCK_ORDER: tuple[Place, ...] = (
    Place("password_resets", "a reset link is used once: its person's links, then the person, then the sessions"),
    Place("people", "a person's account (password, TOTP) before the memberships and credentials it holds"),
    Place("memberships", "role changes and removals lock an organization's memberships in id order, then "
                         "revoke what the member held (sessions, personal keys)"),
    Place("invitations", "accepting an invitation adds a membership after the invitation row is taken"),
    Place("browser_sessions", "a session's cookie is checked (or revoked) before any domain row"),
    Place("api_keys", "a request's key is checked (its last use written) before any domain row"),
    Place("webhook_events", "a Stripe event's inbox row is locked before every row its handler changes"),
    Place("payout_batches", "a run step locks its batch, then the batch's items"),
    Place("payout_items", "taken SKIP LOCKED before the shares a freeze claims or a failed payout gives back"),
    Place("payout_recoveries", "taken SKIP LOCKED before its journal posting"),
    Place("payout_holds", "an operator's hold on a payee; nothing else is locked with it"),
    Place("buyer_accounts", "a buyer account's emailed confirmation, used once; nothing else is locked with it"),
    Place("buyer_organizations", "an operator sets its invoice terms; nothing else is locked with it"),
    Place("buyer_spending_limits", "a buyer organization member's limit, set by its admin; nothing else is "
                                   "locked with it"),
    Place("affiliates", "a payee (recovery planning, onboarding), before what it owns; a Stripe account "
                        "event looks for its account among affiliates, then sellers"),
    Place("sellers", "a payee, likewise"),
    Place("shipping_profiles", "archived by its seller, after the seller's ships_with_profiles flag"),
    Place("affiliate_programs", "a program before its memberships"),
    Place("program_memberships", "a membership before the listings its removal drops"),
    Place("storefronts", "a storefront before its listings"),
    Place("storefront_listings", "dropped when a membership ends or a listing is removed"),
    Place("referral_links", "a link deactivated by its affiliate"),
    Place("coupons", "a coupon changed by its affiliate"),
    Place("quotas", "a target set again by its program's seller; nothing else is locked with it"),
    Place("products", "every catalog write locks its product, then its variants"),
    Place("orders", "every state change of an order locks the order row first"),
    Place("refunds", "a refund's row: sending it, a failure Stripe reports, settling it"),
    Place("sub_orders", "an order's shares, seller shares before commissions: the release job, a payout "
                        "freeze and a refund take them in this order"),
    Place("commissions", "after the sub-orders (above)"),
    Place("order_lines", "written only under the order's row lock, by refunds", guarded_by="orders"),
    Place("invoices", "an order's invoice, paid or voided only under the order's row lock", guarded_by="orders"),
    Place("growth_customers", "a payment's or refund's rollup rows, after the order's shares and before the stock a "
                              "rejection gives back; (group type, group, buyer) order"),
    Place("growth_daily", "the growth rollup, after its customers; rows in key order"),
    Place("variants", "stock, after the order (cancelled, rejected) or product (catalog write) that moves it; "
                      "checkout takes it first"),
    Place("idempotency_keys", "checkout claims its key after the variant rows: a twin in flight is past its own "
                              "variant locks, so it never waits for ours"),
    Place("affiliate_monthly_sales", "volume-tier counters, upserted after the stock a checkout or cancellation "
                                     "moves, in (affiliate, seller) order"),
    Place("referral_click_daily", "click counters; a click is its own transaction"),
    Place("growth_traffic_daily", "funnel traffic counters, added by their flush task in its own transaction"),
    Place("partner_alarms", "opened (insert on conflict do nothing) and resolved on their own; the webhooks after"),
    Place("webhook_deliveries", "an outbound webhook's delivery, sent by its own task after commit"),
    Place("worker_heartbeats", "a worker's own row"),
    Place("mail_outbox", "an outgoing mail's row, sent by its own task after commit"),
    Place("installation_secrets", "created once per installation, in its own savepoint"),
    Place("ledger_balances", "last: kernel.ledger adds a transaction's balance changes at its commit, in one "
                             "upsert sorted by account, after every other row it writes"),
)
RANK: dict[str, int] = {place.table: rank for rank, place in enumerate(LOCK_ORDER)}
GUARDS: dict[str, str] = {place.table: place.guarded_by for place in LOCK_ORDER if place.guarded_by}


class UnrankedTable(LookupError):
    """A table takes row locks but has no place in `LOCK_ORDER`."""


def rank(table: str) -> int:
    try:
        return RANK[table]
    except KeyError:
        raise UnrankedTable(f"table {table!r} has no place in kernel.locking.LOCK_ORDER") from None


# --- taking locks -------------------------------------------------------------------------------

AnySelect = Select[*tuple[Any, ...]]
AnyRow = Row[*tuple[Any, ...]]
S = TypeVar("S", bound=AnySelect)
Ts = TypeVarTuple("Ts")


def table_of(stmt: AnySelect) -> Table:
    """The one table `stmt` selects from (a lock statement locks one table's rows)."""
    froms = stmt.get_final_froms()
    if len(froms) != 1 or not isinstance(froms[0], Table):
        raise TypeError(f"a lock statement reads exactly one table, not {froms!r}")
    return froms[0]


def for_update(stmt: S, *, skip_locked: bool = False, reread: bool = False) -> S:
    """`stmt` as `SELECT ... ORDER BY <primary key> FOR UPDATE` (`skip_locked`: rows another
    transaction holds are left out instead of waited for). `reread`: overwrite objects the
    session loaded before with what the rows hold now (`populate_existing`): a caller that read
    them before locking must decide on what the previous lock holder committed, not on its own
    earlier copy. Within a table the order is the key's: any ORDER BY of `stmt` is replaced."""
    table = table_of(stmt)
    rank(table.name)  # a table that takes row locks must have a place in the order
    locked = stmt.order_by(None).order_by(*table.primary_key.columns).with_for_update(skip_locked=skip_locked)
    if reread:
        locked = locked.execution_options(populate_existing=True)
    return locked


def lock(
    session: Session, stmt: Select[*Ts], *, skip_locked: bool = False, reread: bool = False
) -> Result[*Ts]:
    """Run `for_update(stmt)`: lock the rows it selects, in primary-key order."""
    return session.execute(for_update(stmt, skip_locked=skip_locked, reread=reread))


def lock_all(session: Session, stmts: Sequence[AnySelect], *, reread: bool = False) -> list[list[AnyRow]]:
    """Lock the rows of several tables, one statement per table, in the global order whatever the
    order given; each statement's rows come back in the order the statements were given."""
    order = sorted(range(len(stmts)), key=lambda i: rank(table_of(stmts[i]).name))
    rows: dict[int, list[AnyRow]] = {}
    for i in order:
        rows[i] = list(lock(session, stmts[i], reread=reread).all())
    return [rows[i] for i in range(len(stmts))]


# --- reading the locks a statement takes --------------------------------------------------------

_MAYBE_LOCKS = re.compile(r"\b(?:UPDATE|DELETE|CONFLICT|SHARE)\b", re.IGNORECASE)
_NAME = re.compile(r'\s+(?:ONLY\s+)?(?:"?\w+"?\.)?"?(\w+)"?')
_ALIAS = re.compile(r"\s+(?:AS\s+)?(\w+)", re.IGNORECASE)
_NOT_ALIASES = frozenset((
    "WHERE", "JOIN", "ON", "LEFT", "RIGHT", "INNER", "OUTER", "FULL", "CROSS", "NATURAL", "LATERAL", "USING",
    "ORDER", "GROUP", "HAVING", "LIMIT", "OFFSET", "FETCH", "FOR", "SET", "RETURNING", "UNION", "INTERSECT",
    "EXCEPT", "WINDOW",
))
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_LOCKING_CLAUSE = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b", re.IGNORECASE)
_OF = re.compile(r"\s+OF\s+(.+?)\s*$", re.IGNORECASE | re.DOTALL)
_NO_WAIT = re.compile(r"\b(?:SKIP\s+LOCKED|NOWAIT)\b", re.IGNORECASE)
_WORD = re.compile(r"\b(UPDATE|DELETE\s+FROM|INSERT\s+INTO|FROM|JOIN)\b", re.IGNORECASE)
_LAST_WORD = re.compile(r"(\w+)\s*$")
_ON_CONFLICT = re.compile(r"\bON\s+CONFLICT\b", re.IGNORECASE)
_NOT_DML = re.compile(r"^\s*(?:CREATE|ALTER|DROP|COMMENT|GRANT|SET|SHOW|TRUNCATE)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RowLock:
    """A row lock a statement takes on `table`'s rows; `waits` is False for SKIP LOCKED / NOWAIT."""

    table: str
    waits: bool


def _depths(sql: str) -> list[int]:
    """The parenthesis depth of every character (a parenthesis counts as outside its group)."""
    depth, out = 0, []
    for char in sql:
        if char == ")":
            depth -= 1
        out.append(depth)
        if char == "(":
            depth += 1
    return out


def _group(depths: list[int], at: int) -> tuple[int, int]:
    """The bounds of the parenthesised group (or the whole statement) that holds position `at`."""
    level, start, end = depths[at], at, at
    while start > 0 and depths[start - 1] >= level:
        start -= 1
    while end < len(depths) and depths[end] >= level:
        end += 1
    return start, end


@lru_cache(maxsize=4096)
def row_locks(sql: str) -> tuple[RowLock, ...]:
    """The row locks `sql` takes, in the order its text takes them (the order PostgreSQL runs a
    statement's CTEs in when each is gated on the one before, as the checkout's write is)."""
    if not _MAYBE_LOCKS.search(sql) or _NOT_DML.match(sql):
        return ()
    sql = _LITERAL.sub("''", sql)
    depths = _depths(sql)
    found: list[tuple[int, RowLock]] = []
    for match in _LOCKING_CLAUSE.finditer(sql):
        start, end = _group(depths, match.start())
        tail = sql[match.end():end]
        waits = _NO_WAIT.search(tail) is None
        level = depths[match.start()]
        tables: dict[str, str] = {}  # name or alias -> table, of the FROM clause this clause locks
        for word in _WORD.finditer(sql, start, match.start()):
            name = _NAME.match(sql, word.end())
            if depths[word.start()] == level and word.group(1).upper() in ("FROM", "JOIN") and name:
                tables[name.group(1)] = name.group(1)
                alias = _ALIAS.match(sql, name.end())
                if alias and alias.group(1).upper() not in _NOT_ALIASES:
                    tables[alias.group(1)] = name.group(1)
        of = _OF.match(_NO_WAIT.split(tail)[0])
        if of:
            locked = [tables.get(n, n) for n in (re.sub(r'^.*\.|"', "", p.strip()) for p in of.group(1).split(","))]
        else:
            locked = list(dict.fromkeys(tables.values()))
        found += [(start, RowLock(table, waits)) for table in locked]
    for word in _WORD.finditer(sql):
        kind = " ".join(word.group(1).upper().split())
        name = _NAME.match(sql, word.end())
        if name is None or kind in ("FROM", "JOIN"):
            continue
        if kind == "UPDATE":
            before = _LAST_WORD.search(sql, 0, word.start())
            if before and before.group(1).upper() in ("FOR", "KEY", "DO", "ON"):
                continue  # FOR [NO KEY] UPDATE, ON CONFLICT DO UPDATE, ON UPDATE (a foreign key)
        elif kind == "INSERT INTO":
            _, end = _group(depths, word.start())
            if not _ON_CONFLICT.search(sql, word.start(), end):
                continue  # a plain INSERT: see the module docstring
        found.append((word.start(), RowLock(name.group(1), True)))
    return tuple(lock for _, lock in sorted(found, key=lambda item: item[0]))


# --- recording the locks of each transaction ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockStep:
    table: str
    waits: bool
    statement: str  # the start of the statement that took it, for the report


@dataclass
class TransactionLocks:
    """The row locks one transaction took, in order."""

    steps: list[LockStep] = field(default_factory=list)

    def violations(self) -> list[str]:
        """Each waiting lock taken on a table ranked below one this transaction already holds,
        and each lock on a table with no rank. A table locked again is not a new lock; a table
        locked under its guard is not one either (see the module docstring)."""
        held: set[str] = set()
        top: LockStep | None = None
        found: list[str] = []
        for step in self.steps:
            if step.table in held:
                continue
            held.add(step.table)
            table_rank = RANK.get(step.table)
            if table_rank is None:
                found.append(f"{step.table} takes row locks but has no place in kernel.locking.LOCK_ORDER "
                             f"({step.statement})")
                continue
            if GUARDS.get(step.table) in held:
                continue
            if top is not None and step.waits and table_rank < RANK[top.table]:
                found.append(
                    f"{step.table} (rank {table_rank}) locked after {top.table} (rank {RANK[top.table]}) in one "
                    f"transaction; locks in order: {self.sequence()}; statement: {step.statement}"
                )
            if top is None or table_rank > RANK[top.table]:
                top = step
        return found

    def sequence(self) -> str:
        return " -> ".join(step.table + ("" if step.waits else " (skip locked)") for step in self.steps)


class LockRecorder:
    """Records, per transaction, the row locks the statements sent through `engine` took (see
    `row_locks`); with `Engine` itself (the default), through every engine of the process. A
    context manager; thread-safe (a live server's threads share one). On a connection in
    AUTOCOMMIT each statement is its own transaction."""

    def __init__(self, engine: Engine | type[Engine] = Engine) -> None:
        self.engine = engine
        self.transactions: list[TransactionLocks] = []
        self._open: dict[int, TransactionLocks] = {}
        self._mutex = threading.Lock()

    def __enter__(self) -> LockRecorder:
        event.listen(self.engine, "after_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._end)
        event.listen(self.engine, "rollback", self._end)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "after_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._end)
        event.remove(self.engine, "rollback", self._end)
        with self._mutex:
            self._open.clear()

    def _statement(self, conn: Connection, cursor: Any, statement: str, *_args: Any) -> None:
        locks = row_locks(statement)
        if not locks or getattr(cursor, "rowcount", -1) == 0:
            return
        text = " ".join(statement.split())[:300]
        steps = [LockStep(lock.table, lock.waits, text) for lock in locks]
        autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        with self._mutex:
            if autocommit:
                self.transactions.append(TransactionLocks(steps))
                return
            key = id(conn.connection.dbapi_connection)
            txn = self._open.get(key)
            if txn is None:
                txn = self._open[key] = TransactionLocks()
                self.transactions.append(txn)
            txn.steps.extend(steps)

    def _end(self, conn: Connection) -> None:
        with self._mutex:
            self._open.pop(id(conn.connection.dbapi_connection), None)

    def tables_locked(self) -> set[str]:
        with self._mutex:
            return {step.table for txn in self.transactions for step in txn.steps}

    def violations(self) -> list[str]:
        with self._mutex:
            return [found for txn in self.transactions for found in txn.violations()]
