"""The Celery app of the payout worker tests: the real marketplace worker (every task module,
the real settings from the environment) with two test timing knobs.

- PAYOUT_TEST_VISIBILITY_TIMEOUT: the Redis broker's visibility timeout in seconds, so a worker
  started after another was SIGKILLed restores the dead worker's unacknowledged task within
  seconds (production keeps the hour of the app default).
- The Stripe SDK's retry back-off shrunk from 0.5 s to 50 ms, as the in-process tests do.
"""

from __future__ import annotations

import os

import stripe

from marketplace.worker import app

_visibility = os.environ.get("PAYOUT_TEST_VISIBILITY_TIMEOUT")
if _visibility:
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "visibility_timeout": float(_visibility)}
stripe.HTTPClient.INITIAL_DELAY = 0.05  # type: ignore[attr-defined]
stripe.HTTPClient.MAX_DELAY = 0.2  # type: ignore[attr-defined]

__all__ = ["app"]
