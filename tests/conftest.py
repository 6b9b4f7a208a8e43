"""Test fixtures: the whole suite runs on SQLite (embedded default, in-process stores) and on a
fresh PostgreSQL database with real Redis (production-like). Tests marked `postgres_only`
(row locks, concurrency) run on PostgreSQL alone.

With CI=true a missing PostgreSQL or Redis fails the run instead of skipping tests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import text

from kernel import auth
from kernel.auth import Role
from kernel.clock import clock
from kernel.db import session_scope
from kernel.locking import LockRecorder
from kernel.runtime import Runtime, set_runtime
from kernel.settings import Settings
from kernel.tasking import install_celery
from marketplace.app import create_app
from marketplace.bootstrap import build_celery
from marketplace.migrate import upgrade
from marketplace.models import metadata

pytest_plugins = ["tests.fake_stripe.fixture"]

# The Redis databases the tests use, by variable (the default when it is not exported). Under
# pytest-xdist each worker gets its own: worker gwN moves each one 4 * N databases down (gw0 keeps
# 15/14/13/12, gw1 gets 11/10/9/8, ...), before any test module reads them, so no worker flushes
# another's cache, broker or bench database. Celery workers and servers the tests start inherit them.
REDIS_DATABASES = {
    "TEST_REDIS_URL": "redis://127.0.0.1:6379/15",  # the cache and counters (tests/conftest.py)
    "TEST_BROKER_URL": "redis://127.0.0.1:6379/14",  # tests/test_worker.py's broker
    "TEST_PAYOUT_BROKER_URL": "redis://127.0.0.1:6379/13",  # tests/payouts/workers.py's broker
    "BENCH_REDIS_URL": "redis://127.0.0.1:6379/12",  # tests/loadtests/test_bench_floor.py's bench
}
XDIST_MAX_WORKERS = 4  # Redis has 16 databases: 4 per worker


def redis_databases_of(worker: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The Redis URL of each variable for pytest-xdist worker `worker` ("gw1"; "" in one process)."""
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    assert index < XDIST_MAX_WORKERS, f"at most {XDIST_MAX_WORKERS} xdist workers (4 Redis databases each)"
    urls = {}
    for variable, default in REDIS_DATABASES.items():
        base, database = environ.get(variable, default).rsplit("/", 1)
        urls[variable] = f"{base}/{int(database) - 4 * index}"
    return urls


os.environ.update(redis_databases_of(os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ))

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ["TEST_REDIS_URL"]
# A throwaway test database need not survive a crash of the server: its commits do not wait for
# the WAL flush (the server's own settings and every other database are left as they are).
THROWAWAY_DATABASE_SETTINGS = {"synchronous_commit": "off", "jit": "off"}
SHM = Path("/dev/shm")
BACKENDS = ("sqlite", "postgresql")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _service_missing(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable ({exc}); start it as the README says"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def pytest_configure(config: pytest.Config) -> None:
    """The test process's composition root: one Celery app with every task, running them in this
    process (tests that need a real worker start one). Every `create_app` of the session uses it."""
    install_celery(build_celery(make_settings("sqlite://", None)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist the browser tests run on one worker, in file order: they share one served
    platform (tests/web/conftest.py's `site`, started once) and its state (the console's payout
    batch pays the balances the demo's first start leaves). They come first, so that one long group
    starts at once beside the rest of the suite instead of running alone at its end."""
    for item in items:
        if item.nodeid.startswith("tests/web/"):
            item.add_marker(pytest.mark.xdist_group("web"))
    items.sort(key=lambda item: not item.nodeid.startswith("tests/web/"))  # stable: file order kept


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        only_pg = metafunc.definition.get_closest_marker("postgres_only") is not None
        metafunc.parametrize("backend", ["postgresql"] if only_pg else list(BACKENDS), scope="session")


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    name = f"marketplace_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            for setting, value in THROWAWAY_DATABASE_SETTINGS.items():
                conn.execute(f'ALTER DATABASE "{name}" SET {setting} = {value}')
    except psycopg.OperationalError as exc:
        _service_missing("PostgreSQL at 127.0.0.1:5432", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        _service_missing("Redis at 127.0.0.1:6379", exc)
    return TEST_REDIS_URL


@dataclass
class Backend:
    name: str
    settings: Settings
    runtime: Runtime

    @property
    def is_postgres(self) -> bool:
        return self.name == "postgresql"


def make_settings(database_url: str, redis_url: str | None, **overrides: object) -> Settings:
    """Settings for a test runtime, independent of any .env file or exported variables."""
    values: dict[str, object] = {
        "environment": "test", "database_url": database_url, "redis_url": redis_url,
        "celery_broker_url": None, "stripe_api_key": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def backend_env(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    if backend == "postgresql":
        database_url = request.getfixturevalue("pg_database_url")
        store_url: str | None = request.getfixturevalue("redis_url")
    else:
        # In memory (tmpfs) where the machine has one: the throwaway file's commits then cost no disk
        # flush, as PostgreSQL's do not (THROWAWAY_DATABASE_SETTINGS).
        in_memory = SHM.is_dir() and os.access(SHM, os.W_OK)
        sqlite_directory = Path(tempfile.mkdtemp(prefix="marketplace-test-", dir=SHM if in_memory else None))
        database_url = f"sqlite:///{sqlite_directory / 'test.db'}"
        store_url = None  # the embedded default: in-process cache and counters
    upgrade(database_url)
    export_dir = str(tmp_path_factory.mktemp("exports"))
    settings = make_settings(database_url, store_url, payout_export_dir=export_dir)
    runtime = Runtime(settings)
    yield Backend(backend, settings, runtime)
    runtime.close()
    if backend != "postgresql":
        shutil.rmtree(sqlite_directory, ignore_errors=True)


def _wipe(env: Backend) -> None:
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with env.runtime.engine.begin() as conn:
        if env.is_postgres:
            # DELETE on a few rows is far cheaper than TRUNCATE (new files per table). The replica
            # role skips triggers for this one transaction: the journal's append-only trigger
            # must not stop the test suite from starting each test on an empty database.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
        else:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))
    if env.settings.redis_url:
        redis.Redis.from_url(env.settings.redis_url).flushdb()
    else:
        env.runtime.__dict__.pop("store", None)  # a fresh in-process store


@pytest.fixture
def env(backend_env: Backend) -> Iterator[Backend]:
    """A clean database and store for one test, and a clock back at real time."""
    _wipe(backend_env)
    clock.reset()
    set_runtime(backend_env.runtime)
    yield backend_env
    clock.reset()


@pytest.fixture(autouse=True)
def lock_order_checked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test on PostgreSQL runs with a row-lock recorder on (kernel.locking): a code path that
    takes row locks out of the global lock order fails the test. A test that breaks the order on
    purpose is marked `lock_order_unchecked`."""
    if "env" not in request.fixturenames or request.node.get_closest_marker("lock_order_unchecked"):
        yield
        return
    env = request.getfixturevalue("env")  # set up first, so torn down after the check
    if not env.is_postgres:
        yield
        return
    with LockRecorder() as recorder:
        yield
    violations = recorder.violations()
    assert violations == [], "row locks taken out of the global order (kernel.locking):\n" + "\n".join(violations)


@pytest.fixture
def client(env: Backend) -> Iterator[TestClient]:
    app = create_app(runtime=env.runtime)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def issue_key(env: Backend, role: Role, subject_id: uuid.UUID | None = None) -> str:
    with session_scope(env.runtime.sessions) as session:
        return auth.issue_key(session, role, subject_id, "test").key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def operator_key(env: Backend) -> str:
    return issue_key(env, Role.OPERATOR)


@pytest.fixture
def operator(operator_key: str) -> dict[str, str]:
    return bearer(operator_key)


REPO_ROOT = Path(__file__).resolve().parents[1]


class WebhookReceiver(BaseHTTPRequestHandler):
    """A local endpoint for outbound webhooks: records each POST (headers, body); answers 503 to
    as many first requests as `fail_first` holds entries."""

    received: list[tuple[dict[str, str], bytes]] = []
    fail_first: list[bool] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.fail_first:
            self.fail_first.pop()
            self.send_response(503)
            self.end_headers()
            return
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[str]:
    """The URL of a fresh WebhookReceiver on 127.0.0.1."""
    WebhookReceiver.received = []
    WebhookReceiver.fail_first = []
    server = HTTPServer(("127.0.0.1", 0), WebhookReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
