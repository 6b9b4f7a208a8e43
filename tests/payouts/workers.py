"""Helpers for tests that run real Celery worker processes on the Redis broker (broker db 13)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from celery import Celery

from kernel.db import session_scope
from kernel.settings import Settings
from payouts.models import PayoutBatch
from payouts.service import planning
from tests.conftest import REPO_ROOT, Backend, make_settings
from tests.fake_stripe import FakeStripe

BROKER = os.environ.get("TEST_PAYOUT_BROKER_URL", "redis://127.0.0.1:6379/13")  # test_worker.py uses /14


def start_worker(
    env: Backend, fake: FakeStripe, name: str, log: Path, queue: str = "celery", **settings: object
) -> subprocess.Popen[bytes]:
    values = {
        "DATABASE_URL": env.settings.database_url, "REDIS_URL": env.settings.redis_url or "",
        "CELERY_BROKER_URL": BROKER, "STRIPE_API_KEY": fake.api_key, "STRIPE_API_BASE": fake.url,
        "STRIPE_TIMEOUT_SECONDS": "1", "STRIPE_MAX_NETWORK_RETRIES": "2", "PAYOUT_CHUNK_SIZE": "5",
        "PAYOUT_RETRY_BASE_SECONDS": "0.5", "PAYOUT_EXPORT_DIR": str(log.parent),
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "platform"), str(REPO_ROOT)]),
    }
    values.update({key.upper(): str(value) for key, value in settings.items()})
    if values.get("PAYOUT_RAIL") == "manual":  # no Stripe key: the manual rail (bank export)
        for key in ("PAYOUT_RAIL", "STRIPE_API_KEY", "STRIPE_API_BASE"):
            values.pop(key)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.payouts.worker_app", "worker", "--pool=solo",
             f"--hostname={name}@%h", f"--queues={queue}", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            env=inherited | values, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate: Callable[[], bool], what: str, log: Path, timeout: float = 45.0, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


def wait_ready(sender: Celery, names: list[str], log: Path, timeout: float = 30.0) -> None:
    """Wait until every named worker answers a broadcast ping (it is consuming)."""

    def answered() -> bool:
        replies = sender.control.ping(timeout=0.5) or []
        seen = {name.split("@")[0] for reply in replies for name in reply}
        return set(names) <= seen

    wait_for(answered, f"workers {names} to start", log, timeout=timeout, every=0.2)


def broker_settings() -> Settings:
    """Settings of a sender on the test broker (an emptied Redis database)."""
    redis.Redis.from_url(BROKER).flushdb()
    return make_settings("sqlite://", None, celery_broker_url=BROKER)


def approved_batch(env: Backend) -> str:
    """A Stripe batch, approved, with no task sent yet (the test sends it)."""
    with session_scope(env.runtime.sessions) as session:
        batch, _ = planning.create_batch(session, env.settings, "stripe", "USD", created_by="test")
        planning.approve(session, batch.id, approved_by="test", enqueue=False)
        return str(batch.id)


def batch_status(env: Backend, batch_id: str) -> str:
    with session_scope(env.runtime.sessions) as session:
        batch = session.get(PayoutBatch, uuid.UUID(batch_id))
        assert batch is not None
        return batch.status
