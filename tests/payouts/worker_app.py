"""The Celery app of the payout worker tests: the real marketplace worker (every task module,
the real settings from the environment, the payout lease watch) with one test timing knob: the
Stripe SDK's retry back-off shrunk from 0.5 s to 50 ms, as the in-process tests do. The broker's
visibility timeout stays the production hour: a killed worker's batch must resume without it.
"""

from __future__ import annotations

import stripe

from marketplace.worker import app

stripe.HTTPClient.INITIAL_DELAY = 0.05
# The SDK's default (5) makes mypy infer int; it is a number of seconds, used with floats.
stripe.HTTPClient.MAX_DELAY = 0.2  # type: ignore[assignment]

__all__ = ["app"]
