"""Database kernel: SQLAlchemy 2 (sync, psycopg 3 on PostgreSQL, pysqlite on SQLite).

Why sync and not asyncio: the API, Celery tasks and the CLI share the same service code, and
a sync session works in all three without an event-loop bridge. The hot order path is bound by
database round trips, not by the thread pool, so we count and cut statements instead
(see loadtests/ and the performance notes in the README).

Unit of work: one session and one transaction per request or task, committed at the edge
(`session_scope`, the FastAPI `db_session` dependency, the task base). Services may flush,
never commit.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

from kernel.clock import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use kernel.clock")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def new_id() -> uuid.UUID:
    """A time-ordered UUID (version 7 layout): sorts by creation time, so ids double as cursors."""
    millis = int(time.time() * 1000)
    rand = secrets.randbits(74)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def new_ids(count: int) -> list[uuid.UUID]:
    """`count` ids as `new_id` makes them, the randomness read in one call (a payout chunk's
    journal takes tens of thousands)."""
    millis = int(time.time() * 1000) & ((1 << 48) - 1)
    head = (millis << 80) | (0x7 << 76) | (0b10 << 62)
    noise = secrets.token_bytes(10 * count)
    ids = []
    for start in range(0, 10 * count, 10):
        rand = int.from_bytes(noise[start:start + 10]) >> 6  # 74 random bits
        ids.append(uuid.UUID(int=head | (((rand >> 62) & 0xFFF) << 64) | (rand & ((1 << 62) - 1))))
    return ids


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


def make_engine(database_url: str, *, pool_size: int = 10, max_overflow: int = 10, echo: bool = False) -> Engine:
    if database_url.startswith("sqlite"):
        engine = create_engine(
            database_url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if ":memory:" not in database_url else None,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the writer; the embedded default serves a few users.
            dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn: Any) -> None:
            # Take the write lock at BEGIN: SQLite's deferred upgrade from reader to writer
            # fails with "database is locked" under concurrent writers instead of waiting.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(
        database_url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
    )


_AUTOCOMMIT: WeakKeyDictionary[Engine, Engine] = WeakKeyDictionary()


def autocommit_engine(engine: Engine) -> Engine:
    """`engine` (same pool) with every statement its own transaction. For a unit of work that
    only reads and then writes everything in ONE statement (the checkout on PostgreSQL): no
    BEGIN/COMMIT round trips, and the rows that statement locks are held only while it runs."""
    found = _AUTOCOMMIT.get(engine)
    if found is None:
        found = _AUTOCOMMIT[engine] = engine.execution_options(isolation_level="AUTOCOMMIT")
    return found


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope(factory: sessionmaker[Session], *, bind: Engine | None = None) -> Iterator[Session]:
    """One unit of work: commit when the block ends, roll back if it raises. `bind`: another
    engine for this session (e.g. `autocommit_engine(...)`)."""
    session = factory() if bind is None else factory(bind=bind)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def sqlite_path(database_url: str) -> str | None:
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        return None
    path = database_url[len(prefix):]
    return None if path in ("", ":memory:") else os.path.abspath(path)
