"""Core statements compiled to PostgreSQL text once, for the hot path's reads.

Running a memoized Core `select()` still costs SQLAlchemy a cache-key walk, a compiled-cache
lookup, parameter processing and result metadata on every execution: about 80 microseconds per
statement more than sending the same SQL text with `exec_driver_sql` (measured on this machine;
the checkout sends five statements per order, see loadtests/README.md), and `exec_driver_sql`
itself still builds an execution context and a `CursorResult` with its metadata. `precompile`
renders a statement for psycopg once; `Precompiled.run` (and `driver_execute` for hand-written
SQL) sends that text on a psycopg cursor of the session's connection through SQLAlchemy's
`Connection._cursor_execute`, the path SQLAlchemy itself uses for its own side statements: the
connection's events still fire (the `before_cursor_execute` statement counter of
`kernel.metrics` and tests' listeners see every statement), errors are still wrapped and
handled (a lost connection is invalidated), and the session's transaction is the one in use.
`Precompiled.run`'s rows are psycopg named tuples (attribute access by column name, as with
SQLAlchemy's rows); `driver_execute`'s are plain tuples unless asked.

Rules for statements compiled here (they hold for the callers): lists are bound as PostgreSQL
arrays (`column == any_(bindparam(...))`, not expanding IN); result values come straight from
psycopg (no SQLAlchemy type processing: timestamps are aware, in the session's time zone; JSON
is parsed), so read columns whose Python value does not depend on a SQLAlchemy type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from psycopg import RawCursor
from psycopg.rows import namedtuple_row, tuple_row
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

_DIALECT = psycopg_dialect()


@dataclass(frozen=True, slots=True)
class Precompiled:
    sql: str
    constants: Mapping[str, Any]  # values SQLAlchemy bound itself (literals in the statement)

    def run(self, session: Session, params: Mapping[str, Any]) -> DriverResult:
        return driver_execute(session, self.sql, {**self.constants, **params}, named=True)


class DriverResult:
    """The rows one `driver_execute` fetched, with the few `Result` methods our callers use."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            if not self._rows:
                raise NoResultFound("No row was found when one was required")
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None


_PLACEHOLDER = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s|%%|%")


@lru_cache(maxsize=256)
def _native(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with psycopg's `%(name)s` placeholders turned into PostgreSQL's own `$n` (a name used
    twice is one parameter), and the parameter names in `$n` order. Done once per statement: psycopg
    would parse the text on every execution (and does not even cache the parse of a statement
    longer than 4 KB, like the checkout's write)."""
    names: list[str] = []

    def place(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            if match.group(0) == "%%":
                return "%"
            raise ValueError(f"unsupported % in statement: {sql[max(0, match.start() - 20):match.end() + 20]!r}")
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(place, sql), tuple(names)


def driver_execute(session: Session, sql: str, params: Mapping[str, Any], *, named: bool = False) -> DriverResult:
    """Send `sql` (psycopg's `%(name)s` placeholders) on the session's connection and fetch
    every row, as plain tuples, or as named tuples if `named` (the result's column names must
    then be distinct, as in SQLAlchemy's compiled SELECTs); see the module docstring for what
    still applies (events, errors, transaction). The statement goes out with PostgreSQL's `$n`
    placeholders on a psycopg `RawCursor` (converted once, see `_native`)."""
    native_sql, names = _native(sql)
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    factory: Any = namedtuple_row if named else tuple_row
    cursor: Any = RawCursor(driver, row_factory=factory)
    try:
        connection._cursor_execute(cursor, native_sql, [params[name] for name in names])
        rows = cursor.fetchall() if cursor.description is not None else []
    finally:
        cursor.close()
    return DriverResult(rows)


def precompile(statement: ClauseElement) -> Precompiled:
    compiled = statement.compile(dialect=_DIALECT)
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return Precompiled(str(compiled), constants)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
