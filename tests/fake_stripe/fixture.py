"""Pytest fixtures for the fake Stripe server (register with
`pytest_plugins = ["tests.fake_stripe.fixture"]`).

* `fake_stripe_server` (session): the running `FakeStripe`.
* `fake_stripe` (function): the same server, `reset()` before each test.
* `fake_stripe_client` (function): a `stripe.StripeClient` pointed at it, with a short timeout,
  `max_network_retries=2` and near-zero retry back-off.
* `fake_stripe_globals` (function): the module-level `stripe.api_key` / `stripe.api_base` / ... set to
  the fake for the duration of the test (restored afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from tests.fake_stripe.clients import CLIENT_TIMEOUT_SECONDS, HANG_SECONDS, fast_retries, make_stripe_client
from tests.fake_stripe.server import FakeStripe


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[FakeStripe]:
    server = FakeStripe(hang_seconds=HANG_SECONDS).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_stripe(fake_stripe_server: FakeStripe) -> FakeStripe:
    fake_stripe_server.reset()
    return fake_stripe_server


@pytest.fixture
def fake_stripe_client(fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> stripe.StripeClient:
    fast_retries(monkeypatch)
    return make_stripe_client(fake_stripe)


@pytest.fixture
def fake_stripe_globals(fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> FakeStripe:
    fast_retries(monkeypatch)
    monkeypatch.setattr(stripe, "api_key", fake_stripe.api_key)
    monkeypatch.setattr(stripe, "api_base", fake_stripe.url)
    monkeypatch.setattr(stripe, "max_network_retries", 2)
    monkeypatch.setattr(stripe, "default_http_client", stripe.RequestsClient(timeout=CLIENT_TIMEOUT_SECONDS))
    return fake_stripe
