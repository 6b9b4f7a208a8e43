"""Running a batch: freeze, send through the rail, record. Safe to run on many workers at once,
to kill at any instruction, and to run again.

A run is many short units of work on purpose (the one service here that commits): each step
commits before the next begins, so a crash loses at most the step in progress, and the next run
(another worker, a redelivered task, `marketplace payouts run`) picks up exactly where the data
says the batch is:

1. freeze (one transaction per chunk of `payout_chunk_size` items): lock `queued` items with
   `FOR UPDATE SKIP LOCKED` (two workers take disjoint chunks and never wait on each other), lock
   what they will claim, read the payees' available balances, and post `payout.freeze` for each
   (or skip a payee that became blocked or fell below the minimum). Items become `frozen` with
   their amount and destination fixed for good.
2. mark sending (one transaction per chunk): lock `frozen` items, and `sending` items whose retry
   time has come, with `SKIP LOCKED`; they become `sending`, committed BEFORE the rail is called,
   so after any crash we know a transfer may exist and never return that money to the balance
   without a definite answer from the rail.
3. send and record: lock the item (`FOR UPDATE SKIP LOCKED`) and keep the lock while the rail is
   called, so no other worker sends it at the same time; a worker that dies mid-call drops its
   connection and PostgreSQL releases the lock, so the item is free to be resumed. The rail gets
   the idempotency key `payout-{item.id}` and the same parameters every time: a re-send (after a
   timeout, a 500, a killed worker, a duplicated task) gets the original transfer back. Then
   `payout.paid`, or `payout.failed` for a definite refusal; a retryable error leaves the item
   `sending` with a retry time (exponential backoff).
   Manual rail: the chunk's lines go into the batch's bank export under the batch row lock, in
   the transaction that records them paid (see export.py: the file is cut back to its committed
   length first, so a line is never duplicated).
4. finish: when no item is left in flight the batch is `completed` (the manual export rewritten
   from the items once more) and its reconciliation enqueued.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import NamedTuple

import structlog
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from kernel import outbound
from kernel.clock import clock
from kernel.db import session_scope
from kernel.money import format_minor
from kernel.payment_rail import PaymentRail, PaymentRailError
from kernel.pgsql import is_postgres
from kernel.runtime import Runtime
from kernel.settings import Settings
from kernel.tasking import enqueue_after_commit
from payouts.errors import RailMismatch
from payouts.models import (
    IN_FLIGHT_ITEM_STATUSES,
    BatchStatus,
    ItemStatus,
    PayoutBatch,
    PayoutItem,
)
from payouts.service import export, journal, lease, states
from payouts.service.payees import PayeeKey, among, load_payees
from payouts.service.planning import lock_batch
from payouts.service.states import advance

log = structlog.get_logger(__name__)

RECONCILE_TASK = "payouts.reconcile"
MAX_BACKOFF_SECONDS = 600.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


@dataclass
class RunResult:
    batch_id: uuid.UUID
    status: str  # the batch's status when the run ended
    frozen: int = 0
    skipped: int = 0
    paid: int = 0
    failed: int = 0
    deferred: int = 0  # retryable rail errors: still `sending`, retried later
    retry_in: float | None = None  # seconds until the earliest deferred item is due, if any

    def as_dict(self) -> dict[str, object]:
        return {"batch_id": str(self.batch_id), "status": self.status, "frozen": self.frozen,
                "skipped": self.skipped, "paid": self.paid, "failed": self.failed, "deferred": self.deferred,
                "retry_in": self.retry_in}


def run_batch(runtime: Runtime, batch_id: uuid.UUID) -> RunResult:
    """Work on the batch until nothing is left that this worker can take. Idempotent: running a
    completed, cancelled or unapproved batch does nothing."""
    settings, rail = runtime.settings, runtime.rail
    me = worker_name()
    with session_scope(runtime.sessions) as session:
        batch = _start(session, batch_id, rail.name, me, settings.payout_lease_seconds)
        result = RunResult(batch_id, batch.status)
        if batch.status != BatchStatus.RUNNING:
            return result
        currency, minimum = batch.currency, batch.minimum_amount
    # Renewed at each step below: if this process dies, the lease expires and a live worker
    # resumes the batch (lease.py).
    renewal = lease.Renewal(runtime.sessions, batch_id, me, settings.payout_lease_seconds)
    if rail.name == "manual":
        _run_manual(runtime, batch_id, currency, minimum, me, renewal, result)
    else:
        _run_on_rail(runtime, batch_id, currency, minimum, me, renewal, result)
    with session_scope(runtime.sessions) as session:
        result.status, result.retry_in = finish(session, settings, batch_id)
    log.info("payout_run_ended", worker=me, **result.as_dict())
    return result


def _run_manual(runtime: Runtime, batch_id: uuid.UUID, currency: str, minimum: int, me: str,
                renewal: lease.Renewal, result: RunResult) -> None:
    settings = runtime.settings
    while True:
        renewal.due()
        with session_scope(runtime.sessions) as session:
            frozen, skipped = freeze_chunk(session, settings, batch_id, currency, minimum, "manual", me)
        with session_scope(runtime.sessions) as session:
            sending = mark_sending(session, batch_id, settings.payout_chunk_size, me)
        paid, failed = send_manual(runtime, batch_id, sending)
        result.frozen, result.skipped = result.frozen + frozen, result.skipped + skipped
        result.paid, result.failed = result.paid + paid, result.failed + failed
        # Stop when this pass moved nothing forward: what is left is queued or in flight in
        # another worker's hands (finish() says so).
        if not (frozen or skipped or paid or failed):
            return


def _run_on_rail(runtime: Runtime, batch_id: uuid.UUID, currency: str, minimum: int, me: str,
                 renewal: lease.Renewal, result: RunResult) -> None:
    """The Stripe rail: `payout_send_concurrency` threads send the items (`send_one`, each in its
    own transaction holding its item's lock), fed a chunk ahead: while they send, this thread
    freezes and marks the next chunk, so the rail's rate limit, not our round trips, sets the pace
    (kernel.payment_rail.RateGate paces the requests and backs off after a 429)."""
    settings, rail = runtime.settings, runtime.rail
    outstanding: dict[Future[str], uuid.UUID] = {}
    pool = ThreadPoolExecutor(max_workers=settings.payout_send_concurrency, thread_name_prefix="payout-send")
    try:
        while True:
            renewal.due()
            with session_scope(runtime.sessions) as session:
                frozen, skipped = freeze_chunk(session, settings, batch_id, currency, minimum, rail.name, me)
            with session_scope(runtime.sessions) as session:
                # Not the items our threads hold or are about to take: they are ours already.
                sending = mark_sending(session, batch_id, settings.payout_chunk_size, me,
                                       exclude=list(outstanding.values()))
            for item_id in sending:
                outstanding[pool.submit(send_one, runtime, item_id)] = item_id
            result.frozen, result.skipped = result.frozen + frozen, result.skipped + skipped
            moved = bool(frozen or skipped or sending)
            # Something new: refill once the threads are down to two items each. Nothing new: wait
            # for all of it, then look once more (a retry may have come due).
            low_water = 2 * settings.payout_send_concurrency if moved else 0
            settled = 0
            while len(outstanding) > low_water:
                done, _ = wait(outstanding, timeout=settings.payout_lease_seconds / 6, return_when=FIRST_COMPLETED)
                renewal.due()  # rail calls may be slow
                for future in done:
                    del outstanding[future]
                    outcome = future.result()
                    result.paid += outcome == "paid"
                    result.failed += outcome == "failed"
                    result.deferred += outcome == "deferred"
                    settled += outcome in ("paid", "failed")
            # Stop when a pass moved nothing forward: what is left is queued or in flight in
            # another worker's hands, or deferred until its retry time (finish() says when).
            if not (moved or settled or outstanding):
                return
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start(session: Session, batch_id: uuid.UUID, rail: str, me: str, lease_seconds: float) -> PayoutBatch:
    """approved -> running (under the batch row lock, so two starting workers agree), and the
    run lease to this worker."""
    batch = lock_batch(session, batch_id)
    if batch.status not in (BatchStatus.APPROVED, BatchStatus.RUNNING):
        return batch
    if batch.rail != rail:
        raise RailMismatch(f"payout batch {batch.id} was planned for the {batch.rail} rail; this process "
                           f"is configured for {rail}")
    if batch.status == BatchStatus.APPROVED:
        batch.status = BatchStatus.RUNNING.value
        batch.started_at = clock.now()
    lease.grant(batch, me, lease_seconds)
    return batch


class ItemRow(NamedTuple):
    """An item's columns as a run step reads them (set-based steps read rows, not ORM objects)."""

    id: uuid.UUID
    batch_id: uuid.UUID
    owner_type: str
    owner_id: uuid.UUID
    currency: str
    rail: str
    status: str
    amount: int | None
    payee_name: str | None
    destination: str | None
    rail_reference: str | None
    failure_reason: str | None
    attempts: int

    @property
    def key(self) -> PayeeKey:
        return (self.owner_type, self.owner_id)

    @property
    def idempotency_key(self) -> str:
        return f"payout-{self.id}"


_ITEM_COLUMNS = [getattr(PayoutItem, name) for name in ItemRow._fields]


def _lock_items(session: Session, *where: ColumnElement[bool], limit: int | None = None) -> list[ItemRow]:
    """Lock (`FOR UPDATE SKIP LOCKED`, in key order) and read the items matching `where`."""
    stmt = select(*_ITEM_COLUMNS).where(*where).order_by(PayoutItem.id).limit(limit)
    return [ItemRow(*row) for row in session.execute(stmt.with_for_update(skip_locked=True))]


def freeze_chunk(
    session: Session, settings: Settings, batch_id: uuid.UUID, currency: str, minimum: int, rail: str, me: str
) -> tuple[int, int]:
    """Freeze (or skip) up to one chunk of queued items. Returns (frozen, skipped).

    Locks: the items with `SKIP LOCKED` (another worker's chunk is simply not ours), then the
    commissions / sub-orders to claim (see journal.lock_claimable), then the balances are read.
    Set-based: a few statements whatever the chunk's size (the items' moves, the claims, the
    journal and the balance table each one statement).
    """
    items = _lock_items(session, PayoutItem.batch_id == batch_id, PayoutItem.status == ItemStatus.QUEUED,
                        limit=settings.payout_chunk_size)
    if not items:
        return 0, 0
    keys = [item.key for item in items]
    payees = load_payees(session, keys)
    claimable = journal.lock_claimable(session, currency, keys)
    balances = journal.available_balances(session, currency, keys)
    skips: list[dict[str, object]] = []
    freezes: list[dict[str, object]] = []
    claims: dict[PayeeKey, list[uuid.UUID]] = {}
    txns: list[journal.Txn] = []
    for item in items:
        payee, amount = payees[item.key], balances[item.key]
        reason = payee.blocked_reason(rail)
        if reason is None and amount < 0:
            reason = f"negative balance ({format_minor(amount, currency)}) when the batch ran"
        elif reason is None and (amount <= 0 or amount < minimum):
            reason = (f"balance {format_minor(amount, currency)} below the minimum payout of "
                      f"{format_minor(minimum, currency)} when the batch ran")
        if reason is not None:
            skips.append({"id": item.id, "failure_reason": reason})
            continue
        freezes.append({"id": item.id, "amount": amount, "payee_name": payee.name,
                        "destination": payee.destination(rail)})
        claims[item.key] = claimable[item.key]
        txns.append(journal.freeze_txn(item, amount))
    states.advance_all(session, ItemStatus.SKIPPED, [], from_=[ItemStatus.QUEUED], values={"worker": me},
                       rows=skips)
    states.advance_all(session, ItemStatus.FROZEN, [], from_=[ItemStatus.QUEUED], values={"worker": me},
                       rows=freezes)
    journal.claim_all(session, batch_id, claims)
    journal.write(session, txns)
    return len(freezes), len(skips)


def mark_sending(
    session: Session, batch_id: uuid.UUID, limit: int, me: str, exclude: Sequence[uuid.UUID] = ()
) -> list[uuid.UUID]:
    """Take up to `limit` frozen items, or sending items due for a retry (not those of `exclude`),
    and mark them sending (committed before any rail call), in one UPDATE. `SKIP LOCKED`: an item
    another worker is sending right now is locked by it and not taken."""
    now = clock.now()
    stmt = select(PayoutItem.id).where(
        PayoutItem.batch_id == batch_id,
        PayoutItem.status.in_(IN_FLIGHT_ITEM_STATUSES),
        or_(PayoutItem.next_attempt_at.is_(None), PayoutItem.next_attempt_at <= now),
    )
    if exclude:
        stmt = stmt.where(~among(PayoutItem.id, exclude, is_postgres(session)))
    # Frozen items first: a `sending` item without a retry time is most likely queued in another
    # worker's sending threads right now (marked, not yet locked); taking it would only make a
    # re-send (a listing at the rail before the transfer). It is taken once no frozen item is
    # left: then its worker may have died.
    ids = [row[0] for row in session.execute(
        stmt.order_by(PayoutItem.status != ItemStatus.FROZEN.value, PayoutItem.id).limit(limit)
        .with_for_update(skip_locked=True)
    )]
    # A retry (already `sending`) stays there; either way one more attempt.
    states.advance_all(session, ItemStatus.SENDING, ids, from_=IN_FLIGHT_ITEM_STATUSES,
                       values={"attempts": PayoutItem.attempts + 1, "worker": me, "next_attempt_at": None})
    return ids


def _lock_sending(session: Session, item_ids: Sequence[uuid.UUID]) -> list[PayoutItem]:
    return list(session.scalars(
        select(PayoutItem).where(PayoutItem.id.in_(item_ids), PayoutItem.status == ItemStatus.SENDING)
        .order_by(PayoutItem.id).with_for_update(skip_locked=True)
    ))


def send_one(runtime: Runtime, item_id: uuid.UUID) -> str:
    """Send one item through the (Stripe) rail and record the outcome, holding the item's row lock
    during the call. Returns "paid", "failed", "deferred" or "skipped" (not ours / already done)."""
    settings, rail = runtime.settings, runtime.rail
    with session_scope(runtime.sessions) as session:
        locked = _lock_sending(session, [item_id])
        if not locked:
            return "skipped"
        item = locked[0]
        payee = load_payees(session, [(item.owner_type, item.owner_id)])[(item.owner_type, item.owner_id)]
        url = payee.webhook_url
        blocked = payee.blocked_reason(item.rail)
        if blocked is not None:
            # Held, rejected or unpaid-to since the freeze (a retry waits minutes): no new
            # transfer. One an earlier attempt already made has left; record it.
            made = transfer_already_made(rail, item)
            if made is None:
                journal.write(session, [record_failed(session, item, f"not sent: {blocked}", url)])
                return "failed"
            journal.write(session, [record_paid(session, item, made, url)])
            return "paid"
        try:
            reference = transfer(rail, item)
        except PaymentRailError as exc:
            if exc.retryable:
                defer(settings, item, exc)
                return "deferred"
            journal.write(session, [record_failed(session, item, f"{exc.code or 'rail_error'}: {exc.message}", url)])
            return "failed"
        _pause(settings)
        journal.write(session, [record_paid(session, item, reference, url)])
        return "paid"


def send_manual(runtime: Runtime, batch_id: uuid.UUID, item_ids: Sequence[uuid.UUID]) -> tuple[int, int]:
    """Manual rail: append the chunk to the batch's bank export and record it paid, in one
    transaction under the batch row lock (two workers never write the file at the same time, and
    each starts from the length the previous writer committed). Set-based: the moves, the journal
    and the balance table one statement each. Returns (paid, failed)."""
    if not item_ids:
        return 0, 0
    settings, rail = runtime.settings, runtime.rail
    with session_scope(runtime.sessions) as session:
        batch = lock_batch(session, batch_id)
        locked = _lock_items(session, among(PayoutItem.id, item_ids, is_postgres(session)),
                             PayoutItem.status == ItemStatus.SENDING)
        if not locked:
            return 0, 0
        payees = load_payees(session, [item.key for item in locked])
        # A payee held (or no longer payable) since the freeze gets no export line: failed, its
        # money back to its available balance.
        blocked = {item.id: payees[item.key].blocked_reason(item.rail) for item in locked}
        sent = [item._replace(rail_reference=transfer(rail, item))  # ManualRail: never raises
                for item in locked if blocked[item.id] is None]
        refused = [item._replace(failure_reason=f"not sent: {blocked[item.id]}"[:2000])
                   for item in locked if blocked[item.id] is not None]
        if sent:
            export.append(session, settings, batch, sent)
            _pause(settings)
        states.advance_all(session, ItemStatus.PAID, [], from_=[ItemStatus.SENDING],
                           values={"last_error": None, "next_attempt_at": None},
                           rows=[{"id": item.id, "rail_reference": item.rail_reference} for item in sent])
        states.advance_all(session, ItemStatus.FAILED, [], from_=[ItemStatus.SENDING], values={"next_attempt_at": None},
                           rows=[{"id": item.id, "failure_reason": item.failure_reason} for item in refused])
        for item in refused:
            journal.release_claims(session, item)
            log.warning("payout_failed", item_id=str(item.id), reason=item.failure_reason)
        for item, event_type in [*((i, "payout.paid") for i in sent), *((i, "payout.failed") for i in refused)]:
            _notify(session, item._replace(status=event_type.removeprefix("payout.")), event_type,
                    payees[item.key].webhook_url)
        journal.write(session, [*map(journal.paid_txn, sent), *map(journal.failed_txn, refused)])
        return len(sent), len(refused)


def transfer(rail: PaymentRail, item: PayoutItem | ItemRow) -> str:
    """The rail call. Every parameter comes from the frozen item, so a re-send is identical and
    the rail's idempotency returns the first result. A re-send (an earlier attempt's answer was
    lost or was an error) first adopts a transfer the rail already made for this item (its
    metadata names the item): Stripe replays a stored 500 for a key and forgets keys after 24
    hours, and a new transfer would then pay twice. `attempts` counts markings, so > 1 is a re-send."""
    assert item.amount is not None and item.destination is not None
    made = transfer_already_made(rail, item)
    if made is not None:
        return made
    return rail.transfer(
        destination=item.destination, amount=item.amount, currency=item.currency,
        transfer_group=f"payout-batch-{item.batch_id}",
        metadata={"payout_item_id": str(item.id), "payout_batch_id": str(item.batch_id),
                  "payee": f"{item.owner_type}:{item.owner_id}"},
        idempotency_key=item.idempotency_key,
    )


def transfer_already_made(rail: PaymentRail, item: PayoutItem | ItemRow) -> str | None:
    """On a re-send (`attempts` > 1): the transfer an earlier attempt made for this item, if the
    rail has one (its metadata names the item). A first send has none to look for."""
    if item.attempts <= 1 or item.destination is None:
        return None
    # Both filters: one page (a payee has one item per batch), not the whole batch's transfers.
    listed = rail.list_transfers(transfer_group=f"payout-batch-{item.batch_id}", destination=item.destination)
    made = [t for t in listed if t.metadata.get("payout_item_id") == str(item.id)]
    return made[0].id if made else None


def _pause(settings: Settings) -> None:
    # Test and demo hook (0 in production): widens the window between the rail call and the
    # commit that records it, where a killed worker leaves a transfer made but not recorded.
    if settings.payout_rail_pause_seconds > 0:
        time.sleep(settings.payout_rail_pause_seconds)


def defer(settings: Settings, item: PayoutItem, exc: PaymentRailError) -> None:
    """A retryable rail error: keep the item `sending` (the transfer may exist) and retry it later
    with the same key, after `payout_retry_base_seconds * 2**(attempts-1)` (capped)."""
    delay = min(MAX_BACKOFF_SECONDS, settings.payout_retry_base_seconds * 2 ** max(item.attempts - 1, 0))
    item.last_error = f"{exc.code or 'rail_error'}: {exc.message}"[:500]
    item.next_attempt_at = clock.now() + timedelta(seconds=delay)
    log.warning("payout_send_deferred", item_id=str(item.id), attempts=item.attempts, error=item.last_error,
                retry_in=delay)


def record_paid(session: Session, item: PayoutItem, reference: str, url: str | None) -> journal.Txn:
    """The rail confirmed the transfer: `paid`, and the payee's webhook (`url`, if any). Returns
    the `payout.paid` transaction for the caller to write (a chunk at a time)."""
    item.rail_reference = reference
    item.last_error = None
    item.next_attempt_at = None
    advance(item, ItemStatus.PAID)
    _notify(session, item, "payout.paid", url)
    return journal.paid_txn(item)


def record_failed(session: Session, item: PayoutItem, reason: str, url: str | None) -> journal.Txn:
    """The rail refused it for good: `failed` with the reason, claims given back; returns the
    `payout.failed` transaction (money back to available) for the caller to write."""
    item.failure_reason = reason[:2000]
    item.next_attempt_at = None
    advance(item, ItemStatus.FAILED)
    journal.release_claims(session, item)
    _notify(session, item, "payout.failed", url)
    log.warning("payout_failed", item_id=str(item.id), reason=reason)
    return journal.failed_txn(item)


def _notify(session: Session, item: PayoutItem | ItemRow, event_type: str, url: str | None) -> None:
    outbound.emit(
        session, recipient_type=item.owner_type, recipient_id=item.owner_id, url=url, event_type=event_type,
        data={"payout_id": str(item.id), "batch_id": str(item.batch_id), "status": item.status,
              "amount": {"amount": item.amount, "currency": item.currency},
              "rail": item.rail, "rail_reference": item.rail_reference, "failure_reason": item.failure_reason},
    )


def finish(session: Session, settings: Settings, batch_id: uuid.UUID) -> tuple[str, float | None]:
    """Complete the batch once no item is queued or in flight; else say when to try again.

    Returns (batch status, seconds until the earliest deferred item is due or None)."""
    batch = lock_batch(session, batch_id)
    if batch.status != BatchStatus.RUNNING:
        return batch.status, None
    open_items = session.scalar(
        select(func.count()).select_from(PayoutItem).where(
            PayoutItem.batch_id == batch_id,
            PayoutItem.status.in_((ItemStatus.QUEUED, *IN_FLIGHT_ITEM_STATUSES)),
        )
    ) or 0
    if open_items == 0:
        if batch.rail == "manual":
            export.finalize(session, settings, batch)
        batch.status = BatchStatus.COMPLETED.value
        batch.completed_at = clock.now()
        batch.open_currency = None
        lease.release(batch)
        enqueue_after_commit(session, RECONCILE_TASK, str(batch.id))
        log.info("payout_batch_completed", batch_id=str(batch.id))
        return batch.status, None
    due = session.scalar(
        select(func.min(PayoutItem.next_attempt_at)).where(
            PayoutItem.batch_id == batch_id, PayoutItem.status == ItemStatus.SENDING,
            PayoutItem.next_attempt_at.is_not(None),
        )
    )
    if due is None:
        return batch.status, None  # the rest is in another worker's hands right now (it renews the lease)
    retry_in = max((due - clock.now()).total_seconds(), 0.0)
    # The retry scheduled for then holds the lease until a lease after it: if its worker dies
    # before running it, a live worker takes over (lease.py).
    lease.grant(batch, f"retry:{worker_name()}", retry_in + settings.payout_lease_seconds)
    return batch.status, retry_in
