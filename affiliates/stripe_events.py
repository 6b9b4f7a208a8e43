"""Stripe events the affiliates package handles (the kernel's webhook inbox runs them once).

`STRIPE_HANDLERS` is plain data: the composition root (marketplace.bootstrap) wires it."""

from __future__ import annotations

from typing import Any

from affiliates.service.applications import apply_stripe_account_update
from kernel.stripe_webhooks import HandlerContext, StripeEventHandler


def handle_account_updated(context: HandlerContext, event: dict[str, Any]) -> None:
    """An affiliate's connected account changed: payouts enabled (or disabled again)."""
    apply_stripe_account_update(context.session, event["data"]["object"], int(event.get("created") or 0))


STRIPE_HANDLERS: tuple[tuple[str, StripeEventHandler], ...] = (("account.updated", handle_account_updated),)
