"""How the suite itself runs (tests/conftest.py): each pytest-xdist worker gets Redis databases of
its own, and a throwaway PostgreSQL test database does not wait for the disk on commit."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import REDIS_DATABASES, XDIST_MAX_WORKERS, Backend, redis_databases_of


def test_each_xdist_worker_gets_redis_databases_no_other_worker_uses() -> None:
    seen: dict[str, str] = {}
    for index in range(XDIST_MAX_WORKERS):
        for variable, url in redis_databases_of(f"gw{index}", {}).items():
            assert url not in seen, f"gw{index} {variable} and {seen[url]} share {url}"
            seen[url] = f"gw{index} {variable}"
    assert sorted(int(url.rsplit("/", 1)[1]) for url in seen) == list(range(16))
    assert redis_databases_of("", {}) == REDIS_DATABASES  # one process: the databases as exported
    exported = {"TEST_REDIS_URL": "redis://127.0.0.1:6386/15"}
    assert redis_databases_of("gw1", exported)["TEST_REDIS_URL"] == "redis://127.0.0.1:6386/11"  # the host kept


def test_a_fifth_xdist_worker_is_refused_as_redis_has_no_databases_left() -> None:
    with pytest.raises(AssertionError, match="at most 4 xdist workers"):
        redis_databases_of(f"gw{XDIST_MAX_WORKERS}", {})


@pytest.mark.postgres_only
def test_the_postgresql_test_database_commits_without_waiting_for_the_disk(env: Backend) -> None:
    with env.runtime.engine.connect() as conn:
        assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
        assert conn.execute(text("SHOW jit")).scalar() == "off"
        # set on the test database itself (ALTER DATABASE), not on the server every database shares
        attached = conn.execute(text(
            "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())")).scalar()
    assert set(attached or []) >= {"synchronous_commit=off", "jit=off"}
