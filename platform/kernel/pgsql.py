"""Core statements compiled to PostgreSQL text once, for the hot path, through public API only.

Running a memoized Core `select()` still costs SQLAlchemy a cache-key walk, a compiled-cache
lookup and parameter processing on every execution. `precompile` renders a statement for
psycopg once; `Precompiled.run` (and `driver_execute` for a statement built elsewhere) sends that
text with `Connection.exec_driver_sql` on the session's connection, so everything SQLAlchemy
does around a statement still happens: the connection's events fire (the
`before_cursor_execute` statement counter of `kernel.metrics` and tests' listeners see every
statement), errors are wrapped and handled (a lost connection is invalidated), and the
session's transaction is the one in use. Rows are SQLAlchemy `Row`s (by position or by column
name).

PostgreSQL's own placeholders: psycopg parses `%(name)s` placeholders in Python on every
execution (and does not cache the parse of a statement longer than 4 KB, like the checkout's
write). `driver_execute` converts a statement once to PostgreSQL's `$n` (`native`) and sends it on
a `psycopg.RawCursor`: the driver connection's documented `cursor_factory` is set to `RawCursor`
for that one `exec_driver_sql` call (the connection is this session's alone meanwhile) and put
back after it.

Rules for statements compiled here (they hold for the callers): lists are bound as PostgreSQL
arrays (`column == any_(bindparam(...))`, not expanding IN; `in_list` below); result values come
straight from psycopg (no SQLAlchemy type processing: timestamps are aware, in the session's
time zone; JSON is parsed), so read columns whose Python value does not depend on a SQLAlchemy
type.

`in_list` and `run_built` let one memoized statement builder serve both backends: on SQLite the
Core statement runs as it is (SQLite is the embedded default, not the hot path).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from psycopg import RawCursor
from sqlalchemy import JSON, Select, Table, any_, bindparam, cast, func, literal_column
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.sql import ClauseElement, ColumnElement

_DIALECT = psycopg_dialect()


AnyResult = CursorResult[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Precompiled:
    sql: str
    constants: Mapping[str, Any]  # values SQLAlchemy bound itself (literals in the statement)

    def run(self, session: Session, params: Mapping[str, Any]) -> AnyResult:
        return driver_execute(session, self.sql, {**self.constants, **params})


# What a `run_built` builder returns: the statement, precompiled on PostgreSQL.
Built = Precompiled | Select[*tuple[Any, ...]]


_PLACEHOLDER = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_]*)\)s|%%|%")


@lru_cache(maxsize=256)
def native(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with psycopg's `%(name)s` placeholders turned into PostgreSQL's own `$n` (a name used
    twice is one parameter), and the parameter names in `$n` order. Done once per statement."""
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


def driver_execute(session: Session, sql: str, params: Mapping[str, Any]) -> AnyResult:
    """Send `sql` (psycopg's `%(name)s` placeholders) on the session's connection with
    `exec_driver_sql`, as PostgreSQL `$n` placeholders on a `psycopg.RawCursor` (converted once,
    see `native`). Returns SQLAlchemy's result (rows fetched as the caller asks)."""
    native_sql, names = native(sql)
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    factory = driver.cursor_factory
    driver.cursor_factory = RawCursor
    try:
        return connection.exec_driver_sql(native_sql, tuple(params[name] for name in names))
    finally:
        driver.cursor_factory = factory


def precompile(statement: ClauseElement) -> Precompiled:
    compiled = statement.compile(dialect=_DIALECT)
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return Precompiled(str(compiled), constants)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def in_list(column: ColumnElement[Any] | QueryableAttribute[Any], name: str, postgres: bool) -> ColumnElement[bool]:
    """`column IN (:name...)`; on PostgreSQL `column = ANY(:name)` with the list bound as one
    array, so the statement compiles to constant text."""
    if postgres:
        return column == any_(bindparam(name))
    return column.in_(bindparam(name, expanding=True))


def run_built(session: Session, builder: Callable[..., Any], params: Mapping[str, Any], *shape: bool) -> AnyResult:
    """Run the statement `builder(*shape, postgres)` makes (memoized by the caller, e.g. with
    `lru_cache`; on PostgreSQL it returns a `Precompiled`): its precompiled text on PostgreSQL,
    elsewhere the Core statement on the session's connection (columns, not entities: the ORM's
    per-execution compile state would be pure overhead)."""
    result: AnyResult
    if is_postgres(session):
        result = builder(*shape, True).run(session, params)
    else:
        result = session.connection().execute(builder(*shape, False), params)
    return result


def aggregated_ids(value: Any) -> frozenset[uuid.UUID]:
    """An aggregated id list as the driver returns it: a list of UUIDs (PostgreSQL's array_agg),
    comma-separated hex (SQLite's group_concat), or NULL when nothing matched."""
    if not value:
        return frozenset()
    if isinstance(value, str):
        return frozenset(uuid.UUID(part) for part in value.split(","))
    return frozenset(uuid.UUID(str(part)) for part in value)


def collect_ids(postgres: bool) -> Any:
    """The aggregate that collects ids into one value `aggregated_ids` reads back."""
    return func.array_agg if postgres else func.group_concat


def json_rows(table: Table, param: str, name: str) -> Any:
    """The rows in JSON parameter `param` (an array of objects keyed by column name) as a FROM
    item `name` with every column of `table`, typed as the table's own row type (PostgreSQL's
    `json_populate_recordset`): one parameter for any number of rows, so a statement that
    inserts them does not depend on the row count and stays prepared."""
    return func.json_populate_recordset(
        literal_column(f"NULL::{table.name}"), cast(bindparam(param), JSON)
    ).table_valued(*(column.name for column in table.columns), name=name)


@lru_cache(maxsize=16)
def _insert_from_json(table: Table) -> Any:
    from sqlalchemy import insert, select

    names = [column.name for column in table.columns]
    rows = json_rows(table, "rows", "r")
    return insert(table).from_select(names, select(*(rows.c[name] for name in names)))


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts keyed by column name, a missing key is NULL: no column default applies;
    values orjson can write, as UUIDs and aware datetimes are) as one `INSERT ... SELECT FROM
    json_populate_recordset(:rows)`: one parameter for thousands of rows, where psycopg's
    executemany would send one INSERT per row. PostgreSQL only."""
    import orjson

    session.execute(_insert_from_json(table), {"rows": orjson.dumps(rows).decode()})
