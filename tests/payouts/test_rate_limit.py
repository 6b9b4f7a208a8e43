"""The Stripe rail keeps Stripe's rate limit busy and honours its 429s (issue 18 item 4).

The fake Stripe server enforces a requests-per-second limit like Stripe's (a token bucket; a
request over it gets Stripe's 429 `rate_limit` error and is not performed). The run sends on
several threads, paced by `stripe_requests_per_second` (here set a quarter above the limit, as a
process sharing the account with others would find it), backs off after each 429 and sends the
same request again with the same idempotency key: each payee is paid once, and the served
requests fill at least 90 % of the limit over the run.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest

from kernel.db import session_scope
from kernel.payment_rail import StripeRail
from kernel.runtime import Runtime, set_runtime
from loadtests import payout_bench as bench
from payouts.service import planning, runner
from tests.conftest import Backend, make_settings
from tests.fake_stripe import FakeStripe
from tests.fake_stripe.clients import fast_retries
from tests.payouts.conftest import audit, stripe_account, transfers_by_destination

pytestmark = pytest.mark.postgres_only  # threads sending at once: real row locks

LIMIT = 25.0  # requests a second: Stripe's test-mode limit
PAYEES = 200


def run_paced_batch(env: Backend, fake: FakeStripe, tmp_path: Path, *, pace: float, payees: int,
                    concurrency: int = 4) -> tuple[Runtime, uuid.UUID]:
    settings = make_settings(
        env.settings.database_url, env.settings.redis_url, stripe_api_key=fake.api_key,
        stripe_api_base=fake.url, stripe_timeout_seconds=2.0, stripe_max_network_retries=2,
        payout_export_dir=str(tmp_path), payout_chunk_size=50, payout_send_concurrency=concurrency,
        stripe_requests_per_second=pace, payout_minimum_minor=100,
    )
    runtime = Runtime(settings)
    set_runtime(runtime)
    try:
        bench.seed_sellers(runtime, payees, rail="stripe", accounts=[stripe_account(fake) for _ in range(payees)])
        with session_scope(runtime.sessions) as session:
            batch, _ = planning.create_batch(session, settings, "stripe", "USD", created_by="test")
            planning.approve(session, batch.id, approved_by="test", enqueue=False)
            batch_id = batch.id
        fake.limit_rate(LIMIT)
        result = runner.run_batch(runtime, batch_id)
        assert result.status == "completed" and result.paid == payees, result
    finally:
        set_runtime(env.runtime)
        runtime.close()
    return runtime, batch_id


def test_a_run_over_the_rate_limit_is_refused_with_429s_backs_off_and_still_fills_90_percent_of_it_paying_each_once(
    env: Backend, fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fast_retries(monkeypatch)
    runtime, batch_id = run_paced_batch(env, fake_stripe, tmp_path, pace=LIMIT * 1.25, payees=PAYEES)

    stats = fake_stripe.rate_stats()
    assert stats.limited > 0, "the pace is over the limit: Stripe must have refused some requests"
    # Every 429 was seen by the run and backed off from (the SDK does not retry a 429 itself).
    assert isinstance(runtime.rail, StripeRail) and runtime.rail.gate.rate_limited == stats.limited
    # Refused requests were sent again with the same key until served: one transfer per payee.
    transfers = transfers_by_destination(fake_stripe)
    assert len(transfers) == PAYEES and all(len(made) == 1 for made in transfers.values())
    keys = Counter(r.idempotency_key for r in fake_stripe.requests if r.method == "POST" and r.path == "/v1/transfers")
    # (a 429 may also fall on a listing: the reconciliation's)
    assert len(keys) == PAYEES and PAYEES < sum(keys.values()) <= PAYEES + stats.limited
    assert audit(env) == []
    assert stats.utilisation >= 0.9, stats
    assert stats.first is not None and stats.last is not None
    with capsys.disabled():
        print(f"\n[payouts rate limit] {stats.served} served, {stats.limited} refused (429) at a limit of "
              f"{LIMIT:.0f}/s over {stats.last - stats.first:.1f} s: utilisation {stats.utilisation:.0%} "
              f"(batch {batch_id})")
