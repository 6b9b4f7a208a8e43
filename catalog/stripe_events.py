"""Stripe events the catalog handles (registered with the kernel's webhook inbox).

Listed in kernel.tasking.TASK_MODULES so the Celery worker registers these handlers too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from catalog.sellers import apply_stripe_account_update
from kernel.stripe_webhooks import on_stripe_event


@on_stripe_event("account.updated")
def handle_account_updated(session: Session, event: dict[str, Any]) -> None:
    """A connected account changed: payouts enabled (or disabled again) for its seller."""
    apply_stripe_account_update(session, event["data"]["object"], int(event.get("created") or 0))
