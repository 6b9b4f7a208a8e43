"""A real Celery worker process on the real Redis broker runs a real task against PostgreSQL."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from kernel.db import session_scope
from kernel.settings import Settings
from kernel.tasking import make_celery
from kernel.tasks import WorkerHeartbeat
from tests.conftest import REPO_ROOT, Backend, make_settings

# Its own Redis database, apart from the store (TEST_REDIS_URL): override when runs share a Redis.
BROKER_DB = os.environ.get("TEST_BROKER_URL", "redis://127.0.0.1:6379/14")


def start_worker(env: Backend, *extra: str) -> subprocess.Popen[bytes]:
    child_env = {
        **os.environ,
        "DATABASE_URL": env.settings.database_url,
        "REDIS_URL": env.settings.redis_url or "",
        "CELERY_BROKER_URL": BROKER_DB,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "platform"), str(REPO_ROOT)]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "marketplace.worker", "worker", "--pool=solo",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle", *extra],
        env=child_env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def output_so_far(worker: subprocess.Popen[bytes]) -> str:
    """What the worker has written so far (one read of what is buffered; for a failed assertion's
    message). `stdout=PIPE` makes `stdout` a buffered reader."""
    return worker.stdout.read1().decode() if isinstance(worker.stdout, io.BufferedReader) else ""


@pytest.fixture
def broker_settings(env: Backend, redis_url: str) -> Settings:
    import redis

    redis.Redis.from_url(BROKER_DB).flushdb()
    return make_settings(env.settings.database_url, env.settings.redis_url, celery_broker_url=BROKER_DB)


@pytest.fixture
def worker(env: Backend, broker_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    process = start_worker(env)
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_for(predicate: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


@pytest.mark.postgres_only
@pytest.mark.celery_worker
def test_worker_process_runs_a_task_sent_through_the_redis_broker(
    env: Backend, broker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    sender = make_celery(broker_settings)
    sender.send_task("system.heartbeat", args=["from-the-test"])

    def heartbeat_recorded() -> bool:
        with session_scope(env.runtime.sessions) as session:
            return session.scalar(select(WorkerHeartbeat).where(WorkerHeartbeat.note == "from-the-test")) is not None

    assert wait_for(heartbeat_recorded), output_so_far(worker)


@pytest.mark.postgres_only
@pytest.mark.celery_worker
def test_marketplace_worker_runs_tasks_and_sigterm_stops_it_with_nothing_left_running(
    env: Backend, broker_settings: Settings
) -> None:
    import signal
    import uuid

    queue = f"q-{uuid.uuid4().hex[:10]}"  # also marks every process the command starts
    child_env = {
        **os.environ, "DATABASE_URL": env.settings.database_url, "REDIS_URL": env.settings.redis_url or "",
        "CELERY_BROKER_URL": BROKER_DB,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "platform"), str(REPO_ROOT)]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "marketplace.cli", "worker", "--concurrency", "1", "--queues", queue],
        env=child_env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        make_celery(broker_settings).send_task("system.heartbeat", args=[queue], queue=queue)

        def heartbeat_recorded() -> bool:
            with session_scope(env.runtime.sessions) as session:
                return session.scalar(select(WorkerHeartbeat).where(WorkerHeartbeat.note == queue)) is not None

        assert wait_for(heartbeat_recorded, timeout=60)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) is not None
    finally:
        if process.poll() is None:
            process.kill()
    left = subprocess.run(["pgrep", "-f", queue], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes still running after SIGTERM: {left}"
