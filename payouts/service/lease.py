"""The run lease of a payout batch: proof that some process is working on it, renewed while it
works, and taken over by a live worker when it expires. This is how a batch whose whole worker
was SIGKILLed (or whose machine vanished) resumes within about a minute.

Why not the broker alone: the run task is acknowledged late, so Celery redelivers it when a
worker's pool process dies, but when the whole worker dies the task stays unacknowledged in Redis
until the broker's visibility timeout (an hour; kernel/tasking.py says why it must stay long).

The rule:
- an approved batch that no run has started yet has `payout_lease_seconds` from its approval (the
  queued task's time to start) before it counts as expired;
- a run (`runner.run_batch`) takes it when it starts, renews it at least every third of the
  lease while it makes progress (between chunks and before each rail call), extends it to the
  retry time when it stops with items waiting for a retry (a Celery retry is scheduled), and
  drops it when the batch completes;
- `take_over_expired`, run every `payout_lease_check_seconds` by each Celery worker (`watch`,
  started by the worker's composition root) and every minute by beat (`payouts.resume_stalled`),
  locks approved or running batches whose lease has expired (`SKIP LOCKED`: two watchers never
  both take one), grants the lease to itself and enqueues a run.

The lease is a liveness signal, not a lock: exactly-once never depends on it. A run that joins a
live one (a lease that lapsed during a slow rail call, a duplicated task) only shares its items:
item row locks with SKIP LOCKED, the forward-only item states and the journal's unique postings
keep every payee paid once (runner.py).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import timedelta

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from kernel.clock import clock
from kernel.db import make_engine, make_sessionmaker, session_scope
from kernel.settings import Settings
from kernel.tasking import enqueue_after_commit
from payouts.models import BatchStatus, PayoutBatch

log = structlog.get_logger(__name__)

RUN_TASK = "payouts.run_batch"
LEASED_STATUSES = (BatchStatus.APPROVED, BatchStatus.RUNNING)


def grant(batch: PayoutBatch, owner: str, seconds: float) -> None:
    """Give the lease to `owner` for `seconds` from now (the caller holds the batch row lock)."""
    batch.lease_owner = owner[:100]
    batch.lease_expires_at = clock.now() + timedelta(seconds=seconds)


def release(batch: PayoutBatch) -> None:
    """The batch is finished: nobody needs to hold it (the caller holds the batch row lock)."""
    batch.lease_owner = None
    batch.lease_expires_at = None


class Renewal:
    """A run's lease renewals: `due()` at each progress point renews at most every third of the
    lease, each in its own short transaction (so the batch row is locked only for the UPDATE)."""

    def __init__(self, sessions: sessionmaker[Session], batch_id: uuid.UUID, owner: str, seconds: float) -> None:
        self.sessions, self.batch_id, self.owner, self.seconds = sessions, batch_id, owner, seconds
        self.renewed_at = time.monotonic()  # the run's start granted it

    def due(self) -> None:
        if time.monotonic() - self.renewed_at < self.seconds / 3:
            return
        with session_scope(self.sessions) as session:
            session.execute(
                update(PayoutBatch).where(PayoutBatch.id == self.batch_id, PayoutBatch.status.in_(LEASED_STATUSES))
                .values(lease_owner=self.owner[:100], lease_expires_at=clock.now() + timedelta(seconds=self.seconds))
            )
        self.renewed_at = time.monotonic()


def take_over_expired(session: Session, settings: Settings, owner: str) -> list[uuid.UUID]:
    """Approved or running batches whose lease expired (an approved batch no run has taken yet:
    a lease's time after its approval): take the lease and enqueue a run of each once `session`
    commits. Returns their ids."""
    now = clock.now()
    never_started_before = now - timedelta(seconds=settings.payout_lease_seconds)
    batches = list(session.scalars(
        select(PayoutBatch).where(
            PayoutBatch.status.in_(LEASED_STATUSES),
            or_(PayoutBatch.lease_expires_at < now,
                and_(PayoutBatch.lease_expires_at.is_(None),
                     or_(PayoutBatch.approved_at.is_(None), PayoutBatch.approved_at < never_started_before))),
        ).order_by(PayoutBatch.id).with_for_update(skip_locked=True)
    ))
    for batch in batches:
        log.warning("payout_lease_taken_over", batch_id=str(batch.id), previous_owner=batch.lease_owner,
                    expired_at=batch.lease_expires_at.isoformat() if batch.lease_expires_at else None, owner=owner)
        grant(batch, f"takeover:{owner}", settings.payout_lease_seconds)
        enqueue_after_commit(session, RUN_TASK, str(batch.id))
    session.flush()
    return [batch.id for batch in batches]


class Watch:
    """A worker's lease watch: a daemon thread that runs `take_over_expired` every
    `payout_lease_check_seconds` (with jitter, so workers started together do not query in step).

    It has its own engine and closes its connection after each check: it runs in the worker's
    main process, which forks pool processes, and a child must not inherit an open connection."""

    def __init__(self, settings: Settings, owner: str) -> None:
        self.settings, self.owner = settings, owner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="payout-lease-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        engine = make_engine(self.settings.database_url, pool_size=1, max_overflow=0)
        sessions = make_sessionmaker(engine)
        every = self.settings.payout_lease_check_seconds
        try:
            while not self._stop.wait(every * random.uniform(0.8, 1.2)):
                try:
                    with session_scope(sessions) as session:
                        take_over_expired(session, self.settings, self.owner)
                except Exception:  # the database or broker is down: try again next time
                    log.exception("payout_lease_watch_failed")
                finally:
                    engine.dispose()
        finally:
            engine.dispose()
