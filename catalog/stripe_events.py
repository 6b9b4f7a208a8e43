"""Stripe events the catalog handles (the kernel's webhook inbox runs them once).

`STRIPE_HANDLERS` is plain data: the composition root (marketplace.bootstrap) wires it."""

from __future__ import annotations

from typing import Any

from catalog.service.sellers import apply_stripe_account_update
from kernel.stripe_webhooks import HandlerContext, StripeEventHandler


def handle_account_updated(context: HandlerContext, event: dict[str, Any]) -> None:
    """A connected account changed: payouts enabled (or disabled again) for its seller."""
    apply_stripe_account_update(context.session, event["data"]["object"], int(event.get("created") or 0))


STRIPE_HANDLERS: tuple[tuple[str, StripeEventHandler], ...] = (("account.updated", handle_account_updated),)
