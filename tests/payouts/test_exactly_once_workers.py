"""Exactly once, with real Celery worker processes on the real Redis broker, real PostgreSQL, and
the real Stripe SDK against the fake Stripe server (which counts every transfer it made).

- Two workers run the same batch at once: they share its items (SKIP LOCKED) and each payee gets
  one transfer.
- The same task delivered twice (same task id), and again after the batch finished: no second
  transfer, no second journal posting.
- Stripe drops responses after making the transfer, answers 500, times out, and fails beyond the
  SDK's retries: every retry carries the item's key, so Stripe made one transfer per payee and
  the ledger's paid_out equals what Stripe transferred.

A worker SIGKILLed mid-batch: test_killed_worker.py.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kernel.db import session_scope
from kernel.settings import Settings
from kernel.tasking import make_celery
from payouts.models import ItemStatus, PayoutItem, PayoutReconciliation
from tests.conftest import Backend
from tests.fake_stripe import FakeStripe
from tests.payouts.conftest import (
    audit,
    balance,
    count_postings,
    credit,
    items_of,
    make_payee,
    stripe_account,
    transfers_by_destination,
)
from tests.payouts.workers import (
    approved_batch,
    batch_status,
    broker_settings,
    start_worker,
    stop,
    wait_for,
    wait_ready,
)

pytestmark = [pytest.mark.postgres_only, pytest.mark.celery_worker]

@pytest.fixture(scope="module")
def broker(redis_url: str) -> Settings:
    return broker_settings()


@pytest.fixture(scope="module")
def worker_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("payout-workers") / "workers.log"


@pytest.fixture(scope="module")
def two_workers(
    backend_env: Backend, fake_stripe_server: FakeStripe, broker: Settings, worker_log: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two worker processes for the module; a short pause after each rail call makes them overlap.
    One sending thread each: the fault test arms faults for "the next requests" in order, which
    only one sender per worker keeps deterministic (threads sending at once: test_killed_worker.py,
    test_rate_limit.py, test_slow_10k.py)."""
    workers = [start_worker(backend_env, fake_stripe_server, f"pay{i}", worker_log, payout_rail_pause_seconds=0.03,
                            payout_send_concurrency=1)
               for i in (1, 2)]
    wait_ready(make_celery(broker), ["pay1", "pay2"], worker_log)  # else one could do the whole batch alone
    yield workers
    for process in workers:
        stop(process)


def seed(env: Backend, fake: FakeStripe, count: int, amount: int = 2500) -> list[str]:
    accounts = [stripe_account(fake) for _ in range(count)]
    for i, account in enumerate(accounts):
        credit(env, "seller", make_payee(env, "seller", stripe_account=account, bank=None), amount + i)
    return accounts


def paid_count(env: Backend, batch_id: str) -> int:
    with session_scope(env.runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(PayoutItem).where(
            PayoutItem.batch_id == uuid.UUID(batch_id), PayoutItem.status == ItemStatus.PAID)) or 0


def reconciled(env: Backend, batch_id: str) -> str | None:
    with session_scope(env.runtime.sessions) as session:
        return session.scalar(select(PayoutReconciliation.status).where(
            PayoutReconciliation.batch_id == uuid.UUID(batch_id)))


def assert_each_paid_once(env: Backend, fake: FakeStripe, batch_id: str, accounts: list[str]) -> None:
    items = items_of(env, batch_id)
    transfers = transfers_by_destination(fake)
    assert {i.status for i in items} == {"paid"}
    assert {a: len(t) for a, t in transfers.items()} == dict.fromkeys(accounts, 1)  # one transfer per payee
    assert {i.rail_reference for i in items} == {t[0]["id"] for t in transfers.values()}
    assert count_postings(env, "payout.paid") == count_postings(env, "payout.freeze") == len(accounts)
    assert balance(env, "platform", None, "paid_out") == sum(t[0]["amount"] for t in transfers.values())
    assert audit(env) == []


def test_two_workers_running_the_same_batch_at_once_share_it_and_pay_each_payee_once(
    env: Backend, fake_stripe: FakeStripe, broker: Settings, two_workers: list[subprocess.Popen[bytes]],
    worker_log: Path,
) -> None:
    accounts = seed(env, fake_stripe, 30)
    batch_id = approved_batch(env)
    sender = make_celery(broker)

    sender.send_task("payouts.run_batch", args=[batch_id])
    sender.send_task("payouts.run_batch", args=[batch_id])

    wait_for(lambda: batch_status(env, batch_id) == "completed", "the batch to complete", worker_log)
    assert_each_paid_once(env, fake_stripe, batch_id, accounts)
    assert len({i.worker for i in items_of(env, batch_id)}) == 2  # both workers paid some of it
    wait_for(lambda: reconciled(env, batch_id) is not None, "the reconciliation", worker_log)
    assert reconciled(env, batch_id) == "ok"


def test_the_same_task_delivered_twice_and_again_after_the_batch_finished_pays_nobody_twice(
    env: Backend, fake_stripe: FakeStripe, broker: Settings, two_workers: list[subprocess.Popen[bytes]],
    worker_log: Path,
) -> None:
    accounts = seed(env, fake_stripe, 12)
    batch_id = approved_batch(env)
    sender = make_celery(broker)
    task_id = str(uuid.uuid4())

    sender.send_task("payouts.run_batch", args=[batch_id], task_id=task_id)
    sender.send_task("payouts.run_batch", args=[batch_id], task_id=task_id)  # a duplicated delivery
    wait_for(lambda: batch_status(env, batch_id) == "completed", "the batch to complete", worker_log)
    requests_after_run = len(fake_stripe.requests)
    journal_after_run = count_postings(env, "payout.paid")
    late = sender.send_task("payouts.run_batch", args=[batch_id], task_id=task_id)  # redelivered late
    sender.send_task("system.heartbeat", args=["after-the-late-delivery"])
    wait_for(lambda: _heartbeat(env, "after-the-late-delivery"), "the late delivery to be consumed", worker_log)

    assert late.id == task_id
    assert_each_paid_once(env, fake_stripe, batch_id, accounts)
    assert count_postings(env, "payout.paid") == journal_after_run
    assert [r for r in fake_stripe.requests[requests_after_run:] if r.method == "POST"] == []


def _heartbeat(env: Backend, note: str) -> bool:
    from kernel.tasks import WorkerHeartbeat

    with session_scope(env.runtime.sessions) as session:
        return session.scalar(select(WorkerHeartbeat.id).where(WorkerHeartbeat.note == note)) is not None


def test_stripe_timeouts_500s_and_dropped_responses_are_retried_with_the_same_key_and_stripe_and_ledger_agree(
    env: Backend, fake_stripe: FakeStripe, broker: Settings, two_workers: list[subprocess.Popen[bytes]],
    worker_log: Path,
) -> None:
    accounts = seed(env, fake_stripe, 6)
    batch_id = approved_batch(env)
    # Faults are taken in this order by the next transfer requests, whichever worker sends them:
    fake_stripe.fail_next("/v1/transfers", "drop_after_success", method="POST")  # made; the response lost
    fake_stripe.fail_next("/v1/transfers", "500", count=2, method="POST")  # the SDK's 2 retries: deferred
    fake_stripe.fail_next("/v1/transfers", "timeout", method="POST")  # nothing made, no answer in 1 s
    fake_stripe.fail_next("/v1/transfers", "drop_after_success", method="POST")

    make_celery(broker).send_task("payouts.run_batch", args=[batch_id])

    wait_for(lambda: batch_status(env, batch_id) == "completed", "the batch to complete", worker_log)
    assert_each_paid_once(env, fake_stripe, batch_id, accounts)
    keys = [r.idempotency_key for r in fake_stripe.requests if r.method == "POST" and r.path == "/v1/transfers"]
    deferred = [i for i in items_of(env, batch_id) if i.attempts > 1]
    assert len(deferred) == 1  # the item whose every SDK retry failed went round a Celery retry
    # made+dropped, 500, 500; the Celery retry then found the transfer at Stripe (GET, listing the
    # batch's transfer group) and adopted it instead of posting again
    assert keys.count(deferred[0].idempotency_key) == 3
    assert len(keys) == len(accounts) + 2 + 1 + 1  # every other retry reused its item's key as well
    assert set(keys) == {i.idempotency_key for i in items_of(env, batch_id)}
    assert any(r.method == "GET" and r.path == "/v1/transfers" for r in fake_stripe.requests)
