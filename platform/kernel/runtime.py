"""The process-wide runtime: settings plus the engine, session factory and stores they imply.

The API app, the Celery worker and the CLI each build one `Runtime` from settings; services get
what they need from it as arguments, never from globals: `get_runtime()` is for the edges only
(the assembly, task bodies, CLI commands). A session opened by `Runtime.sessions` carries the
runtime's store (`kernel.cache.session_store`) for the after-commit cache invalidations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kernel.cache import SESSION_STORE, Store, make_store
from kernel.db import make_engine, make_sessionmaker, session_scope
from kernel.installation import VISITOR_HASH, installation_secret
from kernel.metrics import count_statements
from kernel.payment_rail import PaymentRail, make_rail
from kernel.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    engine: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(
            self.settings.database_url,
            pool_size=self.settings.db_pool_size,
            max_overflow=self.settings.db_max_overflow,
            echo=self.settings.db_echo,
        )
        count_statements(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        # Read when a session commits, so a store rebuilt later (tests drop it) is the one used.
        self.sessions.configure(info={SESSION_STORE: lambda: self.store})

    @cached_property
    def store(self) -> Store:
        return make_store(self.settings.redis_url, cache_in_process=self.settings.one_process_writes)

    @cached_property
    def rail(self) -> PaymentRail:
        """Stripe Connect when settings.stripe_api_key is set, else the manual rail."""
        return make_rail(self.settings)

    @cached_property
    def visitor_hash_key(self) -> str:
        """The key referral visitors' address + user-agent fingerprints are hashed with: this
        installation's own secret (kernel.installation), read once per process. Not a setting,
        so no two installations can link the same visitor, and nothing public derives it."""
        with session_scope(self.sessions) as session:
            return installation_secret(session, VISITOR_HASH)

    def close(self) -> None:
        self.engine.dispose()


_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The runtime of this process, built from the environment on first use (worker, CLI)."""
    global _runtime
    if _runtime is None:
        from kernel.settings import get_settings

        _runtime = Runtime(get_settings())
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime
