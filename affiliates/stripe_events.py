"""Stripe events the affiliates package handles (the kernel's webhook inbox runs them once).
Imported by affiliates.api and affiliates.tasks so both the API process and the worker register it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from affiliates.service.applications import apply_stripe_account_update
from kernel.stripe_webhooks import on_stripe_event


@on_stripe_event("account.updated")
def handle_account_updated(session: Session, event: dict[str, Any]) -> None:
    """An affiliate's connected account changed: payouts enabled (or disabled again)."""
    apply_stripe_account_update(session, event["data"]["object"], int(event.get("created") or 0))
