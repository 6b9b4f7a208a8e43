"""kernel.pgsql turns psycopg's named placeholders into PostgreSQL's `$n` once per statement, and
sends statements through SQLAlchemy's public `exec_driver_sql`."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg import RawCursor
from sqlalchemy import event, text
from sqlalchemy.exc import DataError

from kernel.pgsql import driver_execute, native
from tests.conftest import Backend


def test_named_placeholders_become_positional_and_repeat() -> None:
    sql, names = native("SELECT %(a)s, %(b)s::json WHERE x = %(a)s AND y LIKE 'p%%'")
    assert sql == "SELECT $1, $2::json WHERE x = $1 AND y LIKE 'p%'"
    assert names == ("a", "b")


def test_a_stray_percent_is_refused() -> None:
    with pytest.raises(ValueError):
        native("SELECT 5 % 2")


@pytest.mark.postgres_only
def test_driver_statements_go_through_sqlalchemy_events_errors_and_the_raw_cursor(env: Backend) -> None:
    """`driver_execute` uses only public API (`exec_driver_sql`): the engine's events see the
    statement (the statement counter of kernel.metrics listens there), a database error arrives
    wrapped as SQLAlchemy's, and the session's connection is back to its own cursor afterwards."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(env.runtime.engine, "before_cursor_execute", record)
    try:
        with env.runtime.sessions() as session:
            row = driver_execute(session, "SELECT %(a)s::int + %(a)s::int AS twice, %(b)s::text AS b",
                                 {"a": 21, "b": "x"}).one()
            assert (row.twice, row.b) == (42, "x")
            with pytest.raises(DataError):
                driver_execute(session, "SELECT 1 / %(zero)s::int", {"zero": 0})
            session.rollback()
            driver = session.connection().connection.driver_connection
            assert driver is not None
            assert driver.cursor_factory is not RawCursor
            assert session.execute(text("SELECT 1")).scalar() == 1
    finally:
        event.remove(env.runtime.engine, "before_cursor_execute", record)
    assert seen[:2] == ["SELECT $1::int + $1::int AS twice, $2::text AS b", "SELECT 1 / $1::int"]
