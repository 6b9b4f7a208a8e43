"""A batch of 10,000 payees completes, timed (not in the default run: `pytest -m slow`).

1. The manual rail in this process (`loadtests.payout_bench`, what `python -m loadtests.payout_bench` runs).
2. The Stripe rail with two real Celery workers on the Redis broker against the fake Stripe
   server: 10,000 transfers, each payee paid once, the ledger audit clean.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kernel.tasking import make_celery
from loadtests import payout_bench as bench
from tests.conftest import Backend
from tests.fake_stripe import FakeStripe
from tests.payouts.conftest import audit, stripe_account, transfers_by_destination
from tests.payouts.workers import (
    approved_batch,
    batch_status,
    broker_settings,
    start_worker,
    stop,
    wait_for,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]
PAYEES = 10_000
# The manual rail's batch size: CI's 10,000; `SLOW_MANUAL_PAYEES=100000` for the bank-file figure.
MANUAL_PAYEES = int(os.environ.get("SLOW_MANUAL_PAYEES", PAYEES))


def report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[payouts 10k] {line}")


def test_a_manual_rail_batch_of_10000_payees_completes_in_process(
    env: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = env.settings.model_copy(update={"payout_export_dir": str(tmp_path)})
    result = bench.run(payees=MANUAL_PAYEES, database_url=env.settings.database_url, settings=settings,
                       log=lambda _: None)

    assert result.paid == MANUAL_PAYEES and result.findings == []
    seconds = result.timings["run batch"]
    report(capsys, f"manual rail, {MANUAL_PAYEES:,} payees, 1 run, chunks of {bench.DEFAULT_CHUNK}: {seconds:.1f} s, "
                   f"{MANUAL_PAYEES / seconds:,.0f} payees/s, {result.run_cpu_seconds:.1f} s CPU ({result.timings})")


@pytest.mark.celery_worker
def test_a_stripe_batch_of_10000_payees_completes_on_two_workers_paying_each_once(
    env: Backend, fake_stripe: FakeStripe, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    accounts = [stripe_account(fake_stripe) for _ in range(PAYEES)]
    ids = bench.seed_sellers(env.runtime, PAYEES, rail="stripe", accounts=accounts)
    assert len(ids) == PAYEES
    batch_id = approved_batch(env)
    broker = broker_settings()
    log = tmp_path / "workers.log"
    workers = [start_worker(env, fake_stripe, f"big{i}", log, payout_chunk_size=50) for i in (1, 2)]
    try:
        sender = make_celery(broker)
        wait_ready(sender, ["big1", "big2"], log)  # the clock times the batch, not start-up
        started = time.perf_counter()
        for _ in workers:
            sender.send_task("payouts.run_batch", args=[batch_id])
        wait_for(lambda: batch_status(env, batch_id) == "completed", "10,000 payouts", log, timeout=900, every=1)
        seconds = time.perf_counter() - started
    finally:
        for process in workers:
            stop(process)

    transfers = transfers_by_destination(fake_stripe)
    assert len(transfers) == PAYEES and all(len(t) == 1 for t in transfers.values())
    assert audit(env) == []
    report(capsys, f"stripe rail, 2 workers: {seconds:.1f} s, {PAYEES / seconds:,.0f} payees/s")
