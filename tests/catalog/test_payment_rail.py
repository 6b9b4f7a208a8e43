"""The payment rail against the fake Stripe server (the real SDK over HTTP): every StripeRail
method, error mapping, and idempotency under timeouts, 5xx and dropped responses."""

from __future__ import annotations

import pytest
import stripe
from pydantic import SecretStr

from kernel.payment_rail import (
    ManualRail,
    PaymentRailError,
    RailNotApplicable,
    StripeRail,
    _stripe_error,
    make_rail,
    manual_reference,
)
from kernel.settings import Settings
from tests.fake_stripe import FakeStripe
from tests.fake_stripe.clients import CLIENT_TIMEOUT_SECONDS, fast_retries


def rail_settings(fake: FakeStripe | None, **overrides: object) -> Settings:
    values: dict[str, object] = {"environment": "test", "database_url": "sqlite://", "stripe_api_key": None}
    if fake is not None:
        values.update(stripe_api_key=SecretStr(fake.api_key), stripe_api_base=fake.url,
                      stripe_timeout_seconds=CLIENT_TIMEOUT_SECONDS, stripe_max_network_retries=2)
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def rail(fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> StripeRail:
    fast_retries(monkeypatch)
    built = make_rail(rail_settings(fake_stripe))
    assert isinstance(built, StripeRail)
    return built


def onboarded(fake: FakeStripe, rail: StripeRail, key: str = "seller-account-1") -> str:
    account_id = rail.create_connected_account(email="s@example.com", metadata={"seller_id": "1"}, idempotency_key=key)
    fake.complete_onboarding(account_id)
    return account_id


def transfer(rail: StripeRail, destination: str, key: str, amount: int = 1000, group: str = "order-1") -> str:
    return rail.transfer(destination=destination, amount=amount, currency="USD", transfer_group=group,
                         metadata={"payout_item": key}, idempotency_key=key)


def test_make_rail_picks_stripe_only_with_a_key(fake_stripe: FakeStripe) -> None:
    assert isinstance(make_rail(rail_settings(fake_stripe)), StripeRail)
    assert isinstance(make_rail(rail_settings(None)), ManualRail)


def test_connected_account_is_an_express_account_created_once_per_key(
    fake_stripe: FakeStripe, rail: StripeRail
) -> None:
    first = rail.create_connected_account(email="s@example.com", metadata={"seller_id": "42"},
                                          idempotency_key="seller-account-42", country="us")
    again = rail.create_connected_account(email="s@example.com", metadata={"seller_id": "42"},
                                          idempotency_key="seller-account-42", country="us")
    assert first == again and first.startswith("acct_")
    [account] = fake_stripe.objects("account")
    assert (account["type"], account["email"], account["metadata"], account["country"]) == (
        "express", "s@example.com", {"seller_id": "42"}, "US")
    assert rail.retrieve_account(first) == (first, False, False)
    fake_stripe.complete_onboarding(first)
    assert rail.retrieve_account(first).payouts_enabled is True


def test_onboarding_link_is_an_account_link(fake_stripe: FakeStripe, rail: StripeRail) -> None:
    account_id = rail.create_connected_account(email="s@example.com", metadata={}, idempotency_key="a-1")
    url = rail.onboarding_link(account_id, refresh_url="https://p.example/refresh",
                               return_url="https://p.example/return", idempotency_key="link-1")
    assert url.startswith("https://connect.stripe.com/setup/") and account_id in url
    with pytest.raises(PaymentRailError) as missing:
        rail.onboarding_link("acct_missing", refresh_url="https://p.example/r", return_url="https://p.example/r",
                             idempotency_key="link-2")
    assert missing.value.retryable is False and missing.value.http_status == 400


def test_payment_cancel_and_refund(fake_stripe: FakeStripe, rail: StripeRail) -> None:
    payment = rail.create_payment(amount=7499, currency="USD", transfer_group="order-1",
                                  metadata={"order_id": "order-1"}, idempotency_key="order-1-payment")
    assert payment.id.startswith("pi_") and payment.client_secret and payment.status == "requires_payment_method"
    intent = fake_stripe.object(payment.id)
    assert (intent["amount"], intent["currency"], intent["transfer_group"], intent["metadata"]) == (
        7499, "usd", "order-1", {"order_id": "order-1"})
    same = rail.create_payment(amount=7499, currency="USD", transfer_group="order-1",
                               metadata={"order_id": "order-1"}, idempotency_key="order-1-payment")
    assert same.id == payment.id

    other = rail.create_payment(amount=1000, currency="USD", transfer_group="order-2", metadata={},
                                idempotency_key="order-2-payment")
    assert rail.cancel_payment(other.id, idempotency_key="order-2-cancel") == "canceled"

    fake_stripe.succeed_payment_intent(payment.id)
    refund_id = rail.refund(payment_id=payment.id, amount=1250, metadata={"refund_id": "r1"},
                            idempotency_key="refund-r1")
    assert refund_id == rail.refund(payment_id=payment.id, amount=1250, metadata={"refund_id": "r1"},
                                    idempotency_key="refund-r1")
    [refund] = fake_stripe.objects("refund")
    assert (refund["id"], refund["amount"], refund["metadata"]) == (refund_id, 1250, {"refund_id": "r1"})
    with pytest.raises(PaymentRailError) as too_much:
        rail.refund(payment_id=payment.id, amount=10_000, metadata={}, idempotency_key="refund-r2")
    assert too_much.value.retryable is False and too_much.value.code == "amount_too_large"


def test_transfer_reverse_and_list_for_reconciliation(fake_stripe: FakeStripe, rail: StripeRail) -> None:
    seller, affiliate = onboarded(fake_stripe, rail, "acct-s"), onboarded(fake_stripe, rail, "acct-a")
    t1 = transfer(rail, seller, "payout-item-1", 4099)
    t2 = transfer(rail, affiliate, "payout-item-2", 420)
    t3 = transfer(rail, seller, "payout-item-3", 2050, group="order-2")
    reversal = rail.reverse_transfer(t1, amount=1025, idempotency_key="reversal-1")
    assert reversal.startswith("trr_")
    assert rail.reverse_transfer(t1, amount=1025, idempotency_key="reversal-1") == reversal
    group = rail.list_transfers(transfer_group="order-1")
    assert [(t.id, t.destination, t.amount, t.amount_reversed, t.currency, t.metadata) for t in group] == [
        (t1, seller, 4099, 1025, "USD", {"payout_item": "payout-item-1"}),
        (t2, affiliate, 420, 0, "USD", {"payout_item": "payout-item-2"}),
    ]
    assert [t.id for t in rail.list_transfers(destination=seller)] == [t1, t3]
    rest = rail.reverse_transfer(t1, amount=None, idempotency_key="reversal-2")
    assert fake_stripe.object(t1)["amount_reversed"] == 4099 and rest != reversal
    with pytest.raises(ValueError):
        rail.list_transfers()


@pytest.mark.parametrize("fault", ["timeout", "500", "drop_after_success"])
def test_a_transfer_retried_after_a_fault_is_made_once(fake_stripe: FakeStripe, rail: StripeRail, fault: str) -> None:
    destination = onboarded(fake_stripe, rail)
    fake_stripe.fail_next("/v1/transfers", fault, method="POST")  # type: ignore[arg-type]
    transfer_id = transfer(rail, destination, "payout-item-9")
    [made] = fake_stripe.objects("transfer")
    assert made["id"] == transfer_id
    attempts = [r for r in fake_stripe.requests if r.path == "/v1/transfers" and r.method == "POST"]
    assert [r.idempotency_key for r in attempts] == ["payout-item-9", "payout-item-9"]


def test_retries_exhausted_is_a_retryable_error_and_the_same_key_later_pays_once(
    fake_stripe: FakeStripe, rail: StripeRail
) -> None:
    destination = onboarded(fake_stripe, rail)
    fake_stripe.fail_next("/v1/transfers", "drop_after_success", count=3, method="POST")
    with pytest.raises(PaymentRailError) as failed:
        transfer(rail, destination, "payout-item-7")
    assert failed.value.retryable is True
    assert len(fake_stripe.objects("transfer")) == 1  # Stripe made it; we never heard
    fake_stripe.fail_next("/v1/transfers", "500", count=3, method="POST")
    with pytest.raises(PaymentRailError) as server_error:
        transfer(rail, destination, "payout-item-7")
    assert server_error.value.retryable is True and server_error.value.http_status == 500
    later = transfer(rail, destination, "payout-item-7")  # e.g. the Celery retry
    assert [t["id"] for t in fake_stripe.objects("transfer")] == [later]


def test_permanent_errors_are_not_retryable(fake_stripe: FakeStripe, rail: StripeRail) -> None:
    not_onboarded = rail.create_connected_account(email="s@example.com", metadata={}, idempotency_key="acct-x")
    with pytest.raises(PaymentRailError) as capability:
        transfer(rail, not_onboarded, "payout-item-1")
    assert capability.value.retryable is False and capability.value.code == "insufficient_capabilities_for_transfer"
    destination = onboarded(fake_stripe, rail)
    transfer(rail, destination, "payout-item-2", amount=100)
    with pytest.raises(PaymentRailError) as reused:
        transfer(rail, destination, "payout-item-2", amount=200)  # same key, other amount
    assert reused.value.retryable is False and reused.value.code == "idempotency_error"
    bad_key = make_rail(rail_settings(fake_stripe, stripe_api_key=SecretStr("sk_test_wrong")))
    with pytest.raises(PaymentRailError) as auth:
        bad_key.create_payment(amount=1000, currency="USD", transfer_group="o", metadata={}, idempotency_key="q")
    assert auth.value.retryable is False and auth.value.http_status == 401


def test_card_decline_maps_to_a_non_retryable_error_with_the_decline_code() -> None:
    error = stripe.CardError("Your card was declined.", None, "card_declined", http_status=402,
                             json_body={"error": {"type": "card_error", "code": "card_declined",
                                                  "decline_code": "insufficient_funds"}})
    mapped = _stripe_error(error)
    assert (mapped.retryable, mapped.code, mapped.http_status) == (False, "insufficient_funds", 402)
    assert _stripe_error(stripe.APIConnectionError("reset")).retryable is True
    assert _stripe_error(stripe.RateLimitError("slow down", http_status=429)).retryable is True


def test_manual_rail_gives_stable_references_and_no_onboarding() -> None:
    rail = ManualRail()
    payment = rail.create_payment(amount=100, currency="EUR", transfer_group="o-1", metadata={},
                                  idempotency_key="order-1-payment")
    assert payment.client_secret is None and payment.id == manual_reference("pay", "order-1-payment")
    assert rail.transfer(destination="DE89...", amount=5, currency="EUR", transfer_group=None, metadata={},
                         idempotency_key="payout-item-1") == manual_reference("tr", "payout-item-1")
    refund = rail.refund(payment_id=payment.id, amount=5, metadata={}, idempotency_key="refund-1")
    assert refund.startswith("manual_re_")
    assert rail.reverse_transfer("manual_tr_x", amount=None, idempotency_key="rev-1").startswith("manual_trr_")
    assert rail.cancel_payment(payment.id, idempotency_key="c") == "canceled"
    assert rail.list_transfers(transfer_group="o-1") == []
    for call in (
        lambda: rail.create_connected_account(email="a@b.c", metadata={}, idempotency_key="k"),
        lambda: rail.onboarding_link("acct", refresh_url="r", return_url="r", idempotency_key="k"),
        lambda: rail.retrieve_account("acct"),
    ):
        with pytest.raises(RailNotApplicable):
            call()
