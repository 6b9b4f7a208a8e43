"""Celery tasks of payouts (thin: the work is in runner.py, reconcile.py and planning.py).

Plain functions, listed in `TASKS` and `beat(settings)`: the composition root registers them.
`payouts.run_batch` is acknowledged late (the app default): when a worker's pool process dies
mid-run, the worker hands its task back to the broker at once. When the whole worker dies, the
broker holds the task until its visibility timeout (an hour), so the batch's run lease resumes it
instead: a live worker takes over the expired lease within about a minute (lease.py). Either way
the new run resumes from the items' states; delivering it twice, or to two workers at once, is
safe by construction (see runner.py).
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.exc import OperationalError

from kernel import audit_log, ledger
from kernel.ledger import AFFILIATE, AVAILABLE, SELLER
from kernel.runtime import get_runtime
from kernel.settings import Settings
from kernel.tasking import BeatSpec, TaskSpec, task_session
from payouts.errors import NothingToPay, OpenBatchExists
from payouts.service import lease, planning, reconcile, recoveries, runner

log = structlog.get_logger(__name__)

MAX_RUN_RETRIES = 50


def _audited(task_name: str, args: tuple[Any, ...], outcome: dict[str, object]) -> None:
    """The audit log's system event for a payout task that changed something. The runner,
    recoveries and reconciliation commit in many short transactions of their own (one a payee),
    so task_session cannot see their work: the event is one more transaction, after it, saying
    what the run did (each item's own history is in its rows and the journal)."""
    with task_session() as session:
        audit_log.record_task(session, task_name, args, outcome)


def run_batch(self: Any, batch_id: str) -> dict[str, object]:
    """Run (or resume) a batch. Items waiting after a retryable rail error are retried by a
    Celery retry of this task, scheduled for when the earliest of them is due."""
    result = runner.run_batch(get_runtime(), uuid.UUID(batch_id))
    if result.frozen or result.skipped or result.paid or result.failed or result.deferred:
        _audited(planning.RUN_TASK, (batch_id,), result.as_dict())
    if result.retry_in is not None and not self.request.is_eager:
        raise self.retry(countdown=max(result.retry_in, 1.0))
    return result.as_dict()


def recover_clawbacks(self: Any, accounts: list[list[str]] | None = None) -> dict[str, object]:
    """After a refund (the payees it clawed from available) and on beat (every payee below zero):
    take back from paid Stripe payouts what balances cannot cover (payouts/service/recoveries.py)."""
    wanted = None if accounts is None else [(t, uuid.UUID(i), c) for t, i, c in accounts]
    result = recoveries.recover(get_runtime(), wanted)
    if result.planned or result.recovered or result.failed:
        _audited("payouts.recover_clawbacks", (), result.as_dict())
    if result.retry and not self.request.is_eager:
        raise self.retry(countdown=30)
    return result.as_dict()


def reconcile_batch(batch_id: str) -> dict[str, object]:
    """Compare a batch's paid items with the rail; the result is stored on the batch."""
    found = reconcile.reconcile(get_runtime(), uuid.UUID(batch_id))
    _audited(runner.RECONCILE_TASK, (batch_id,), {"status": found.status, "mismatches": len(found.mismatches)})
    if found.status != "ok":
        log.error("payout_reconciliation_mismatches", batch_id=batch_id, mismatches=found.mismatches[:20])
    return {"status": found.status, "mismatches": len(found.mismatches)}


def create_scheduled() -> list[str]:
    """Beat (settings.payout_schedule_seconds): one batch per currency in which some payee has a
    positive available balance. Batches wait for approval unless settings.payout_auto_approve.
    A currency with an open batch is left alone until that batch is finished."""
    runtime = get_runtime()
    with task_session() as session:
        currencies = {c for (_t, _i, c), amount in
                      ledger.owner_balances(session, AVAILABLE, (SELLER, AFFILIATE)).items() if amount > 0}
    created: list[str] = []
    for currency in sorted(currencies):
        try:
            with task_session() as session:
                batch, _ = planning.create_batch(session, runtime.settings, runtime.rail.name, currency,
                                                 created_by="schedule")
                created.append(str(batch.id))
        except (NothingToPay, OpenBatchExists) as exc:
            log.info("scheduled_payout_skipped", currency=currency, reason=exc.detail)
    return created


def resume_stalled() -> list[str]:
    """Beat's round of the lease watch every Celery worker also runs (payouts/service/lease.py): take over
    approved or running batches whose run lease expired (their worker died, or their run task
    was lost) and enqueue a run of each. A run that joins a live one only shares its items."""
    with task_session() as session:
        taken = lease.take_over_expired(session, get_runtime().settings, f"beat:{runner.worker_name()}")
    return [str(batch_id) for batch_id in taken]


TASKS = (
    TaskSpec(
        planning.RUN_TASK, run_batch, bind=True, max_retries=MAX_RUN_RETRIES, acks_late=True,
        # A deadlock or a dropped connection aborts one unit of work, never half of one: run again.
        autoretry_for=(OperationalError,), retry_backoff=2, retry_backoff_max=120,
    ),
    TaskSpec("payouts.recover_clawbacks", recover_clawbacks, bind=True, max_retries=10),
    TaskSpec(runner.RECONCILE_TASK, reconcile_batch),
    TaskSpec("payouts.create_scheduled", create_scheduled),
    TaskSpec("payouts.resume_stalled", resume_stalled),
)


def beat(settings: Settings) -> tuple[BeatSpec, ...]:
    """The payout beat entries; scheduled batches only when settings.payout_schedule_seconds is set."""
    entries: tuple[BeatSpec, ...] = (
        BeatSpec("payouts-resume-stalled", "payouts.resume_stalled", 60.0),
        BeatSpec("payouts-recover-clawbacks", "payouts.recover_clawbacks", 300.0),
    )
    if settings.payout_schedule_seconds:
        entries += (BeatSpec("payouts-create-scheduled", "payouts.create_scheduled", settings.payout_schedule_seconds),)
    return entries
