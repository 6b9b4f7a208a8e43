"""Core statements compiled to PostgreSQL text once, for the hot path's reads.

Running a memoized Core `select()` still costs SQLAlchemy a cache-key walk, a compiled-cache
lookup, parameter processing and result metadata on every execution: about 80 microseconds per
statement more than sending the same SQL text with `exec_driver_sql` (measured on this machine;
the checkout sends five statements per order, see loadtests/README.md). `precompile` renders a
statement for psycopg once; `Precompiled.run` sends that text on the session's connection
through `exec_driver_sql`, so SQLAlchemy's connection events (statement counting, tests'
listeners), error wrapping and transaction handling all still apply.

Rules for statements compiled here (they hold for the callers): lists are bound as PostgreSQL
arrays (`column == any_(bindparam(...))`, not expanding IN); result values come straight from
psycopg (no SQLAlchemy type processing: timestamps are aware, in the session's time zone; JSON
is parsed), so read columns whose Python value does not depend on a SQLAlchemy type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

_DIALECT = psycopg_dialect()


@dataclass(frozen=True, slots=True)
class Precompiled:
    sql: str
    constants: Mapping[str, Any]  # values SQLAlchemy bound itself (literals in the statement)

    def run(self, session: Session, params: Mapping[str, Any]) -> CursorResult[Any]:
        return session.connection().exec_driver_sql(self.sql, {**self.constants, **params})


def precompile(statement: ClauseElement) -> Precompiled:
    compiled = statement.compile(dialect=_DIALECT)
    constants = {name: value for name, value in compiled.params.items() if value is not None}
    return Precompiled(str(compiled), constants)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
