"""Alembic environment: the URL comes from the caller (marketplace db upgrade) or settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from kernel.settings import get_settings
from marketplace.models import metadata

config = context.config


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations() -> None:
    url = database_url()
    connectable = create_engine(url)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=url.startswith("sqlite"),  # SQLite alters tables by copying them
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


run_migrations()
