"""A faithful fake of the Stripe HTTP API (v1, Connect) for tests that use the real `stripe` SDK.

What it fakes (form-encoded requests, JSON responses, Stripe's object shapes, ids and errors):

* Connect accounts (`acct_`): create / retrieve / update / list; account links (onboarding URLs).
* PaymentIntents (`pi_`): create / retrieve / update / confirm / cancel / list, their charges (`ch_`).
* Refunds (`re_`), transfers (`tr_`) and transfer reversals (`trr_`), payouts (`po_`), balance
  transactions (`txn_`) for every money movement, `GET /v1/balance`, and events (`evt_`).
* `Stripe-Account` (acting as a connected account), `expand[]`, list pagination
  (`limit`, `starting_after`, `ending_before`), unknown / missing / invalid parameter errors, 401s, 404s.
* Idempotency like Stripe: a POST with an `Idempotency-Key` is performed once; a retry with the same
  key and parameters replays the stored status and body with `Idempotent-Replayed: true`; the same key
  with other parameters or another endpoint is a 400 `idempotency_error`. Validation errors and 5xx are
  not stored, so a retry performs the request.
* Webhook signatures: `sign_payload` produces the `Stripe-Signature` header `stripe.Webhook` verifies.

Things the real Stripe does that a test drives by hand: `complete_onboarding`, `succeed_payment_intent`,
`fail_payment_intent`, `fail_refund`, `pay_payout`, `fail_payout`, `add_balance`.

Fault modes, armed with `server.fail_next(path_prefix | None, mode, count=1, method=None)`:

* `"500"` - answer HTTP 500 `api_error` without performing the request or storing an idempotent result.
* `"timeout"` - perform nothing and answer nothing; the connection closes after `hang_seconds`
  (default 3 s, set it above the client's timeout) or at once on `stop()` / `reset()`.
* `"drop_after_success"` - perform the request and store its idempotent result, then close the
  connection without a response: the SDK sees a network error, retries with the same key, and gets the
  stored result back (no duplicate transfer).

Rate limit: `server.limit_rate(per_second)` refuses requests over the limit with Stripe's 429
(`rate_limit`, not performed, not stored under the key); `server.rate_stats()` says how many were
served and refused, and the utilisation of the limit.

Usage::

    server = FakeStripe().start()
    client = stripe.StripeClient("sk_test_fake", base_addresses={"api": server.url})
    ...
    server.stop()
"""

from tests.fake_stripe.core import StripeError
from tests.fake_stripe.server import FAULT_MODES, FakeStripe, FaultMode, RateStats, RecordedRequest
from tests.fake_stripe.webhooks import make_event, sign_payload, webhook_request

__all__ = [
    "FAULT_MODES",
    "FakeStripe",
    "FaultMode",
    "RateStats",
    "RecordedRequest",
    "StripeError",
    "make_event",
    "sign_payload",
    "webhook_request",
]
