"""Every table of the platform, imported in one place so Alembic and tests see the whole schema."""

from __future__ import annotations

from affiliates import models as affiliates_models  # noqa: F401
from catalog import models as catalog_models
from kernel import accounts, audit_log, auth, installation, ledger, mail, outbound, password_reset, sessions, tasks
from kernel import stripe_webhooks as webhook_inbox  # noqa: F401  (the webhook_events table)
from kernel.db import Base
from orders import models as orders_models  # noqa: F401
from payouts import models as payouts_models  # noqa: F401

metadata = Base.metadata

__all__ = ["accounts", "audit_log", "auth", "catalog_models", "installation", "ledger", "mail", "metadata",
           "outbound", "password_reset", "sessions", "tasks"]
