"""Alembic migrations, installed with the distribution so `marketplace db upgrade` works from a
wheel as well as from a checkout (`marketplace.migrate` finds them through this package)."""
