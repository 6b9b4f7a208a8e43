"""kernel.pgsql turns psycopg's named placeholders into PostgreSQL's `$n` once per statement."""

from __future__ import annotations

import pytest

from kernel.pgsql import native


def test_named_placeholders_become_positional_and_repeat() -> None:
    sql, names = native("SELECT %(a)s, %(b)s::json WHERE x = %(a)s AND y LIKE 'p%%'")
    assert sql == "SELECT $1, $2::json WHERE x = $1 AND y LIKE 'p%'"
    assert names == ("a", "b")


def test_a_stray_percent_is_refused() -> None:
    with pytest.raises(ValueError):
        native("SELECT 5 % 2")
