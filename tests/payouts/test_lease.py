"""The run lease of a payout batch (payouts/service/lease.py), in-process: when a batch counts as
abandoned, that only one watcher takes it, that a run renews and finally drops it."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from kernel.clock import clock
from kernel.db import session_scope
from kernel.ledger import SELLER
from payouts.models import PayoutBatch
from payouts.service import lease, planning
from tests.conftest import Backend
from tests.payouts.conftest import credit, make_payee


def _approved(env: Backend) -> uuid.UUID:
    credit(env, SELLER, make_payee(env, SELLER), 4200)
    with session_scope(env.runtime.sessions) as session:  # approved; its run task never arrives
        batch, _ = planning.create_batch(session, env.settings, "manual", "USD", created_by="test")
        planning.approve(session, batch.id, approved_by="test", enqueue=False)
        return batch.id


def _batch(env: Backend, batch_id: uuid.UUID) -> PayoutBatch:
    with session_scope(env.runtime.sessions) as session:
        batch = session.get(PayoutBatch, batch_id)
        assert batch is not None
        return batch


def test_an_approved_batch_nobody_started_is_taken_over_after_one_lease_by_one_watcher_and_completes(
    env: Backend,
) -> None:
    batch_id = _approved(env)
    with session_scope(env.runtime.sessions) as session:
        assert lease.take_over_expired(session, env.settings, "watcher-1") == []  # its task may still come

    clock.advance(timedelta(seconds=env.settings.payout_lease_seconds + 1))
    with session_scope(env.runtime.sessions) as session:
        assert lease.take_over_expired(session, env.settings, "watcher-1") == [batch_id]
        assert lease.take_over_expired(session, env.settings, "watcher-2") == []  # watcher-1 holds it now

    # The run it enqueued (in-process here) completed the batch and dropped the lease.
    batch = _batch(env, batch_id)
    assert (batch.status, batch.lease_owner, batch.lease_expires_at) == ("completed", None, None)
    with session_scope(env.runtime.sessions) as session:
        clock.advance(timedelta(hours=1))
        assert lease.take_over_expired(session, env.settings, "watcher-1") == []  # finished: never again


def test_a_running_batch_is_taken_over_only_once_its_lease_expired_and_a_run_renews_it(env: Backend) -> None:
    batch_id = _approved(env)
    with session_scope(env.runtime.sessions) as session:
        batch = planning.lock_batch(session, batch_id)
        batch.status = "running"
        lease.grant(batch, "worker-a", env.settings.payout_lease_seconds)

    renewal = lease.Renewal(env.runtime.sessions, batch_id, "worker-a", env.settings.payout_lease_seconds)
    clock.advance(timedelta(seconds=env.settings.payout_lease_seconds - 5))
    renewal.renewed_at = time.monotonic() - env.settings.payout_lease_seconds  # a third of it has passed
    renewal.due()
    renewed = _batch(env, batch_id).lease_expires_at
    assert renewed is not None and renewed > clock.now() + timedelta(seconds=env.settings.payout_lease_seconds - 1)
    renewal.due()  # just renewed: no second UPDATE
    assert _batch(env, batch_id).lease_expires_at == renewed

    clock.advance(timedelta(seconds=env.settings.payout_lease_seconds - 1))
    with session_scope(env.runtime.sessions) as session:
        assert lease.take_over_expired(session, env.settings, "watcher") == []  # worker-a is alive
    clock.advance(timedelta(seconds=2))
    with session_scope(env.runtime.sessions) as session:
        assert lease.take_over_expired(session, env.settings, "watcher") == [batch_id]  # worker-a died
    assert _batch(env, batch_id).status == "completed"
