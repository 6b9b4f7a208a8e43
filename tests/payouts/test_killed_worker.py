"""A whole Celery worker SIGKILLed mid-batch: its run task stays unacknowledged in Redis for the
broker's visibility timeout (the production hour; nothing here shortens it) and no beat runs, yet
a worker started after the kill resumes the batch within about a minute, because the dead
worker's run lease expires and the new worker's lease watch takes it over (payouts/service/lease.py).
Every payee is paid once and the audit is clean.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kernel.db import session_scope
from kernel.settings import Settings
from kernel.tasking import make_celery
from payouts.service import planning
from tests.conftest import Backend
from tests.fake_stripe import FakeStripe
from tests.payouts.conftest import audit, balance, count_postings, credit, items_of, make_payee
from tests.payouts.test_exactly_once_workers import assert_each_paid_once, paid_count, seed
from tests.payouts.workers import approved_batch, batch_status, broker_settings, start_worker, stop, wait_for

pytestmark = [pytest.mark.postgres_only, pytest.mark.celery_worker]

# The production lease (45 s) and watch interval (10 s): resumed by about 55 s after the kill.
RESUMED_WITHIN_SECONDS = 90


@pytest.fixture(scope="module")
def broker(redis_url: str) -> Settings:
    return broker_settings()


@pytest.fixture(scope="module")
def worker_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("killed-workers") / "workers.log"


def test_a_worker_killed_after_stripe_made_a_transfer_is_resumed_by_a_live_worker_within_a_minute_paying_once(
    env: Backend, fake_stripe: FakeStripe, broker: Settings, worker_log: Path,
) -> None:
    accounts = seed(env, fake_stripe, 10)
    batch_id = approved_batch(env)
    doomed = start_worker(env, fake_stripe, "doomed", worker_log, payout_rail_pause_seconds=0.4)
    try:
        make_celery(broker).send_task("payouts.run_batch", args=[batch_id])
        # Kill it in the window the pause widens: Stripe made a transfer the database has not recorded.
        wait_for(lambda: paid_count(env, batch_id) >= 2 and len(fake_stripe.objects("transfer"))
                 > paid_count(env, batch_id), "a transfer made but not recorded", worker_log, every=0.02)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        killed_at = time.monotonic()
    finally:
        stop(doomed)
    unrecorded = {t["metadata"]["payout_item_id"] for t in fake_stripe.objects("transfer")} - {
        str(i.id) for i in items_of(env, batch_id) if i.status == "paid"}
    # One per sending thread at most (payout_send_concurrency): each in the pause at the kill.
    assert batch_status(env, batch_id) == "running" and 1 <= len(unrecorded) <= 4

    # A new worker, nothing sent to it: its lease watch takes over the dead worker's expired lease.
    rescuer = start_worker(env, fake_stripe, "rescuer", worker_log)
    try:
        wait_for(lambda: batch_status(env, batch_id) == "completed", "the batch to resume and complete",
                 worker_log, timeout=RESUMED_WITHIN_SECONDS, every=0.5)
    finally:
        stop(rescuer)
    assert time.monotonic() - killed_at < RESUMED_WITHIN_SECONDS

    assert_each_paid_once(env, fake_stripe, batch_id, accounts)
    keys = [r.idempotency_key for r in fake_stripe.requests if r.method == "POST" and r.path == "/v1/transfers"]
    # sent by the killed worker; the new one found each such transfer at Stripe and adopted it
    assert all(keys.count(f"payout-{resent}") == 1 for resent in unrecorded)
    assert len({i.worker for i in items_of(env, batch_id)}) == 2


def test_a_manual_rail_worker_killed_between_its_export_lines_and_their_commit_is_resumed_paying_once(
    env: Backend, fake_stripe: FakeStripe, broker: Settings, worker_log: Path,
) -> None:
    payees = [make_payee(env, "seller") for _ in range(10)]
    for i, payee in enumerate(payees):
        credit(env, "seller", payee, 2000 + i)
    with session_scope(env.runtime.sessions) as session:
        batch, _ = planning.create_batch(session, env.settings, "manual", "USD", created_by="test")
        planning.approve(session, batch.id, approved_by="test", enqueue=False)
        batch_id = str(batch.id)
    export = worker_log.parent / f"payout-batch-{batch_id}.csv"
    # A short lease: this test is about the export.
    doomed = start_worker(env, fake_stripe, "doomed-manual", worker_log, payout_rail="manual",
                          payout_rail_pause_seconds=0.6, payout_lease_seconds=4, payout_lease_check_seconds=1)
    try:
        make_celery(broker).send_task("payouts.run_batch", args=[batch_id])
        # Kill it while the export holds lines whose payment the database has not recorded yet.
        wait_for(lambda: export.exists() and len(export.read_text().splitlines()) - 1 > paid_count(env, batch_id),
                 "export lines written but not committed", worker_log, every=0.02)
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
    finally:
        stop(doomed)
    assert batch_status(env, batch_id) == "running"

    rescuer = start_worker(env, fake_stripe, "rescuer-manual", worker_log, payout_rail="manual",
                           payout_lease_seconds=4, payout_lease_check_seconds=1)
    try:
        wait_for(lambda: batch_status(env, batch_id) == "completed", "the batch to resume and complete", worker_log)
    finally:
        stop(rescuer)

    items = items_of(env, batch_id)
    assert {i.status for i in items} == {"paid"} and len(items) == 10
    lines = export.read_text().splitlines()[1:]
    assert sorted(line.split(",")[1] for line in lines) == sorted(str(i.id) for i in items)  # once each
    assert count_postings(env, "payout.paid") == count_postings(env, "payout.freeze") == 10
    assert balance(env, "platform", None, "paid_out") == sum(2000 + i for i in range(10))
    assert audit(env) == []
