"""Real SDK clients pointed at a `FakeStripe`, with test-friendly timeouts and retry back-off."""

from __future__ import annotations

import pytest
import stripe

from tests.fake_stripe.server import FakeStripe

CLIENT_TIMEOUT_SECONDS = 1.0
HANG_SECONDS = 3.0  # "timeout" faults outlast CLIENT_TIMEOUT_SECONDS


def make_stripe_client(
    server: FakeStripe,
    *,
    timeout: float = CLIENT_TIMEOUT_SECONDS,
    max_network_retries: int = 2,
    stripe_account: str | None = None,
) -> stripe.StripeClient:
    """A real SDK client talking to `server` through `requests` with the given read/connect timeout."""
    return stripe.StripeClient(
        server.api_key,
        base_addresses={"api": server.url, "connect": server.url, "files": server.url},
        stripe_account=stripe_account,
        max_network_retries=max_network_retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the SDK's retry back-off (0.5 s doubling, with jitter) to 10 ms."""
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0.01)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0.05)
