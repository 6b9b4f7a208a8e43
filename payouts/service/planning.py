"""Operator actions on batches: preview, create, approve, cancel, ask for a (re-)run.

A batch is planned from the journal: every payee whose `available` balance in the currency is
at least the minimum and who can be paid (approved, payout account `payouts_enabled`, a
destination on the configured rail) gets one queued item. Nothing moves at creation: the run
freezes each payee's balance as it is at that moment (see runner.py), so earnings or refunds
between creation and the run are paid (or netted) correctly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kernel.clock import clock
from kernel.db import new_id
from kernel.money import format_minor, normalize_currency
from kernel.pgsql import insert_rows, is_postgres
from kernel.settings import Settings
from kernel.tasking import enqueue_after_commit
from payouts.errors import BatchNotFound, BatchStateConflict, NothingToPay, OpenBatchExists
from payouts.models import BatchStatus, ItemStatus, PayoutBatch, PayoutItem
from payouts.service.journal import available_balances
from payouts.service.payees import load_payees
from payouts.service.states import ITEMS

RUN_TASK = "payouts.run_batch"


@dataclass(frozen=True, slots=True)
class PreviewLine:
    owner_type: str
    owner_id: uuid.UUID
    name: str | None
    amount: int  # minor units: the available balance now
    reason: str | None = None  # why blocked or below the minimum


@dataclass
class Preview:
    currency: str
    rail: str
    minimum: int
    payable: list[PreviewLine] = field(default_factory=list)
    below_minimum: list[PreviewLine] = field(default_factory=list)
    blocked: list[PreviewLine] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.payable)


def preview(session: Session, settings: Settings, rail: str, currency: str) -> Preview:
    """Who would be paid now, how much, and who would not and why. Reads only."""
    currency = normalize_currency(currency)
    result = Preview(currency=currency, rail=rail, minimum=settings.payout_minimum_minor)
    balances = available_balances(session, currency)
    payees = load_payees(session, balances)
    for key in sorted(balances, key=lambda k: (k[0], str(k[1]))):
        amount, payee = balances[key], payees[key]
        reason = payee.blocked_reason(rail)
        if reason is None and amount < 0:
            reason = "negative balance (a refund after an earlier payout); later earnings net it"
        if reason is not None:
            result.blocked.append(PreviewLine(key[0], key[1], payee.name, amount, reason))
        elif amount < result.minimum or amount <= 0:
            result.below_minimum.append(PreviewLine(
                key[0], key[1], payee.name, amount,
                f"below the minimum payout of {format_minor(result.minimum, currency)}"))
        else:
            result.payable.append(PreviewLine(key[0], key[1], payee.name, amount))
    return result


def open_batch_id(session: Session, currency: str) -> uuid.UUID | None:
    found: uuid.UUID | None = session.scalar(select(PayoutBatch.id).where(PayoutBatch.open_currency == currency))
    return found


def create_batch(
    session: Session, settings: Settings, rail: str, currency: str, *, created_by: str, enqueue: bool = True
) -> tuple[PayoutBatch, Preview]:
    """Create a batch with one queued item per payable payee. Awaiting approval, unless
    settings.payout_auto_approve (then approved and its run enqueued after commit)."""
    plan = preview(session, settings, rail, currency)
    existing = open_batch_id(session, plan.currency)
    if existing is not None:
        raise OpenBatchExists(f"payout batch {existing} for {plan.currency} is still open; finish or cancel it first",
                              batch_id=str(existing))
    if not plan.payable:
        raise NothingToPay(
            f"no {plan.currency} balance can be paid now: {len(plan.below_minimum)} payee(s) below the minimum "
            f"of {format_minor(plan.minimum, plan.currency)}, {len(plan.blocked)} blocked (the preview says who "
            "and why)"
        )
    batch = PayoutBatch(
        id=new_id(), currency=plan.currency, open_currency=plan.currency, rail=rail, minimum_amount=plan.minimum,
        planned_count=len(plan.payable), planned_amount=plan.total, created_by=created_by,
        status=BatchStatus.AWAITING_APPROVAL.value,
    )
    try:
        # A savepoint: a concurrent creation for the same currency loses on UNIQUE(open_currency)
        # and gets a clean 409 instead of a failed transaction.
        with session.begin_nested():
            session.add(batch)
            session.flush()
    except IntegrityError:
        raise OpenBatchExists(f"another payout batch for {plan.currency} was just created") from None
    now = clock.now()
    # One statement on PostgreSQL; elsewhere one multi-row INSERT per 1,000 items.
    rows = [
        {"id": new_id(), "batch_id": batch.id, "owner_type": line.owner_type, "owner_id": line.owner_id,
         "currency": plan.currency, "rail": rail, "status": ItemStatus.QUEUED.value,
         "planned_amount": line.amount, "payee_name": line.name, "attempts": 0,
         "created_at": now, "updated_at": now}
        for line in plan.payable
    ]
    if is_postgres(session):  # one statement (a bank-file batch has 100,000 items)
        insert_rows(session, ITEMS, rows)
    else:
        for start in range(0, len(rows), 1000):
            session.execute(insert(PayoutItem), rows[start:start + 1000])
    if settings.payout_auto_approve:
        _approve(session, batch, approved_by=created_by, enqueue=enqueue)
    return batch, plan


def lock_batch(session: Session, batch_id: uuid.UUID) -> PayoutBatch:
    """The batch row, locked: status changes of one batch never interleave."""
    batch = session.scalar(select(PayoutBatch).where(PayoutBatch.id == batch_id).with_for_update())
    if batch is None:
        raise BatchNotFound(f"no payout batch {batch_id}")
    return batch


def _approve(session: Session, batch: PayoutBatch, *, approved_by: str, enqueue: bool = True) -> None:
    batch.status = BatchStatus.APPROVED.value
    batch.approved_at = clock.now()
    batch.approved_by = approved_by
    if enqueue:
        enqueue_after_commit(session, RUN_TASK, str(batch.id))


def approve(session: Session, batch_id: uuid.UUID, *, approved_by: str, enqueue: bool = True) -> PayoutBatch:
    """Approve a batch and enqueue its run (`enqueue=False`: the caller runs it, e.g. the CLI with
    its progress bar). Approving an approved or running batch changes nothing."""
    batch = lock_batch(session, batch_id)
    if batch.status in (BatchStatus.APPROVED, BatchStatus.RUNNING):
        return batch
    if batch.status != BatchStatus.AWAITING_APPROVAL:
        raise BatchStateConflict(f"payout batch {batch.id} is {batch.status}; it cannot be approved")
    _approve(session, batch, approved_by=approved_by, enqueue=enqueue)
    return batch


def cancel(session: Session, batch_id: uuid.UUID) -> PayoutBatch:
    """Cancel a batch that has not started running; its queued items are skipped (nothing moved)."""
    batch = lock_batch(session, batch_id)
    if batch.status == BatchStatus.CANCELLED:
        return batch
    if batch.status not in (BatchStatus.AWAITING_APPROVAL, BatchStatus.APPROVED):
        raise BatchStateConflict(f"payout batch {batch.id} is {batch.status}; only a batch that has not "
                                 "started can be cancelled")
    now = clock.now()
    batch.status = BatchStatus.CANCELLED.value
    batch.cancelled_at = now
    batch.open_currency = None
    for item in session.scalars(
        select(PayoutItem).where(PayoutItem.batch_id == batch.id, PayoutItem.status == ItemStatus.QUEUED)
    ):
        item.status = ItemStatus.SKIPPED.value
        item.failure_reason = "batch cancelled"
        item.settled_at = now
    return batch


def request_run(session: Session, batch_id: uuid.UUID) -> PayoutBatch:
    """Enqueue a run of an approved or running batch (a resume after a crash, or a retry after
    rail errors). Safe at any time: runs share the items and never pay one twice."""
    batch = lock_batch(session, batch_id)
    if batch.status not in (BatchStatus.APPROVED, BatchStatus.RUNNING):
        raise BatchStateConflict(f"payout batch {batch.id} is {batch.status}; only an approved or running "
                                 "batch can run")
    enqueue_after_commit(session, RUN_TASK, str(batch.id))
    return batch
