"""The fake Stripe server, driven by the real `stripe` SDK: object shapes, idempotency, fault modes,
errors, pagination and webhook signatures."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import stripe
from stripe.params import TransferCreateParams

from tests.fake_stripe import FakeStripe, sign_payload
from tests.fake_stripe.clients import fast_retries, make_stripe_client
from tests.fake_stripe.core import parse_form

WEBHOOK_SECRET = "whsec_test_secret"


def onboarded_account(server: FakeStripe, client: stripe.StripeClient) -> str:
    account = client.v1.accounts.create(params={"type": "express", "country": "US"})
    server.complete_onboarding(account.id)
    return account.id


def paid_intent(server: FakeStripe, client: stripe.StripeClient, amount: int = 1000) -> stripe.PaymentIntent:
    intent = client.v1.payment_intents.create(params={"amount": amount, "currency": "usd"})
    server.succeed_payment_intent(intent.id)
    return client.v1.payment_intents.retrieve(intent.id)


def replayed(obj: stripe.StripeObject) -> str | None:
    """The `Idempotent-Replayed` header of the response that produced `obj`."""
    assert obj.last_response is not None
    return obj.last_response.headers.get("Idempotent-Replayed")


def transfer_params(destination: str, amount: int = 1000, **extra: Any) -> TransferCreateParams:
    params: TransferCreateParams = {"amount": amount, "currency": "usd", "destination": destination}
    params.update(extra)  # type: ignore[typeddict-item]
    return params


# --- accounts, links, payment intents ---------------------------------------------------------


def test_account_starts_disabled_and_onboarding_enables_it(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    account = fake_stripe_client.v1.accounts.create(params={"type": "express", "metadata": {"seller_id": "42"}})
    assert account.id.startswith("acct_") and account.object == "account" and account.type == "express"
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (False, False, False)
    assert account.to_dict()["metadata"] == {"seller_id": "42"} and account.to_dict()["created"] > 0

    link = fake_stripe_client.v1.account_links.create(
        params={
            "account": account.id,
            "refresh_url": "https://example.test/refresh",
            "return_url": "https://example.test/return",
            "type": "account_onboarding",
        }
    )
    assert link.object == "account_link" and account.id in link.url and link.expires_at > link.created

    event = fake_stripe.complete_onboarding(account.id)
    assert event["type"] == "account.updated" and event["account"] == account.id
    assert event["data"]["object"]["charges_enabled"] is True
    assert event["data"]["previous_attributes"]["charges_enabled"] is False
    fetched = fake_stripe_client.v1.accounts.retrieve(account.id)
    assert (fetched.charges_enabled, fetched.payouts_enabled, fetched.details_submitted) == (True, True, True)
    assert fetched.to_dict()["capabilities"]["transfers"] == "active"


def test_payment_intent_succeeds_or_fails_through_helpers(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    intent = fake_stripe_client.v1.payment_intents.create(
        params={
            "amount": 2500,
            "currency": "usd",
            "transfer_group": "order_1",
            "automatic_payment_methods": {"enabled": True},
            "metadata": {"order_id": "1"},
        }
    )
    assert intent.id.startswith("pi_") and intent.status == "requires_payment_method"
    assert str(intent.client_secret).startswith(f"{intent.id}_secret_")
    assert intent.to_dict()["automatic_payment_methods"] == {"enabled": True}

    event = fake_stripe.succeed_payment_intent(intent.id)
    assert event["type"] == "payment_intent.succeeded" and event["id"].startswith("evt_")
    paid = fake_stripe_client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge"]})
    assert paid.status == "succeeded" and paid.amount_received == 2500
    charge = paid.to_dict()["latest_charge"]  # expanded
    assert charge["id"].startswith("ch_") and charge["transfer_group"] == "order_1"

    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        fake_stripe_client.v1.payment_intents.cancel(intent.id)
    assert excinfo.value.code == "payment_intent_unexpected_state"

    other = fake_stripe_client.v1.payment_intents.create(params={"amount": 900, "currency": "usd"})
    failed = fake_stripe.fail_payment_intent(other.id)
    assert failed["type"] == "payment_intent.payment_failed"
    assert failed["data"]["object"]["last_payment_error"]["code"] == "card_declined"
    canceled = fake_stripe_client.v1.payment_intents.cancel(other.id)
    assert canceled.status == "canceled"


def test_confirming_with_a_declining_test_card_is_a_card_error(fake_stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as excinfo:
        fake_stripe_client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "usd", "payment_method": "pm_card_chargeDeclined", "confirm": True}
        )
    assert excinfo.value.http_status == 402 and excinfo.value.code == "card_declined"
    ok = fake_stripe_client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert ok.status == "succeeded"


def test_module_level_configuration_works_too(fake_stripe_globals: FakeStripe) -> None:
    account = stripe.Account.create(type="express")
    fake_stripe_globals.complete_onboarding(account.id)
    transfer = stripe.Transfer.create(amount=500, currency="usd", destination=account.id)
    assert stripe.Transfer.retrieve(transfer.id).amount == 500
    assert [r.method for r in fake_stripe_globals.requests] == ["POST", "POST", "GET"]


# --- idempotency ------------------------------------------------------------------------------


def test_idempotent_replay_returns_the_same_transfer_and_creates_one(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    destination = onboarded_account(fake_stripe, fake_stripe_client)
    params = transfer_params(destination, metadata={"payout_id": "p1"}, transfer_group="order_7")
    first = fake_stripe_client.v1.transfers.create(params=params, options={"idempotency_key": "payout-p1"})
    second = fake_stripe_client.v1.transfers.create(params=params, options={"idempotency_key": "payout-p1"})

    assert first.id == second.id and first.id.startswith("tr_") and second.to_dict()["metadata"] == {"payout_id": "p1"}
    assert (replayed(first), replayed(second)) == (None, "true")
    assert len(fake_stripe.objects("transfer")) == 1


def test_concurrent_requests_with_one_key_create_one_transfer(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    destination = onboarded_account(fake_stripe, fake_stripe_client)
    ids: list[str] = []

    def send() -> None:
        options: stripe.RequestOptions = {"idempotency_key": "race"}
        ids.append(fake_stripe_client.v1.transfers.create(params=transfer_params(destination), options=options).id)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8 and len(set(ids)) == 1 and len(fake_stripe.objects("transfer")) == 1


def test_same_key_with_different_params_or_endpoint_is_an_idempotency_error(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    destination = onboarded_account(fake_stripe, fake_stripe_client)
    fake_stripe_client.v1.transfers.create(params=transfer_params(destination), options={"idempotency_key": "k"})
    with pytest.raises(stripe.IdempotencyError) as excinfo:
        fake_stripe_client.v1.transfers.create(
            params=transfer_params(destination, amount=999), options={"idempotency_key": "k"}
        )
    assert excinfo.value.http_status == 400
    assert isinstance(excinfo.value.json_body, dict)
    assert excinfo.value.json_body["error"]["type"] == "idempotency_error"
    with pytest.raises(stripe.IdempotencyError, match="same endpoint"):
        fake_stripe_client.v1.payouts.create(params={"amount": 1, "currency": "usd"}, options={"idempotency_key": "k"})
    assert len(fake_stripe.objects("transfer")) == 1


def test_validation_errors_are_not_stored_under_the_key(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    destination = onboarded_account(fake_stripe, fake_stripe_client)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        fake_stripe_client.v1.transfers.create(
            params={"currency": "usd", "destination": destination}, options={"idempotency_key": "k"}
        )
    assert (excinfo.value.code, excinfo.value.param) == ("parameter_missing", "amount")
    assert excinfo.value.user_message == "Missing required param: amount."
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        fake_stripe_client.v1.transfers.create(params=transfer_params(destination, amout=1))
    assert (excinfo.value.code, excinfo.value.param) == ("parameter_unknown", "amout")
    fake_stripe_client.v1.transfers.create(params=transfer_params(destination), options={"idempotency_key": "k"})
    assert len(fake_stripe.objects("transfer")) == 1


# --- fault modes ------------------------------------------------------------------------------


def test_500_is_not_performed_and_a_retry_with_the_same_key_creates_one_transfer(
    fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retries(monkeypatch)
    no_retries = make_stripe_client(fake_stripe, max_network_retries=0)
    destination = onboarded_account(fake_stripe, no_retries)
    fake_stripe.fail_next("/v1/transfers", "500")
    with pytest.raises(stripe.APIError) as excinfo:
        no_retries.v1.transfers.create(params=transfer_params(destination), options={"idempotency_key": "k500"})
    assert excinfo.value.http_status == 500 and fake_stripe.objects("transfer") == []

    transfer = no_retries.v1.transfers.create(params=transfer_params(destination), options={"idempotency_key": "k500"})
    assert [t["id"] for t in fake_stripe.objects("transfer")] == [transfer.id]

    fake_stripe.fail_next("/v1/transfers", "500", count=2)  # the SDK itself retries 5xx
    retrying = make_stripe_client(fake_stripe, max_network_retries=2)
    again = retrying.v1.transfers.create(params=transfer_params(destination, amount=7))
    assert len(fake_stripe.objects("transfer")) == 2 and again.amount == 7
    keys = [r.idempotency_key for r in fake_stripe.requests if r.path == "/v1/transfers"][-3:]
    assert len(set(keys)) == 1  # three attempts, one auto-generated key


def test_a_request_over_the_rate_limit_gets_stripes_429_is_not_performed_nor_retried_by_the_sdk(
    fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retries(monkeypatch)
    client = make_stripe_client(fake_stripe, max_network_retries=2)
    destination = onboarded_account(fake_stripe, client)
    fake_stripe.limit_rate(0.5, burst=1)  # one request now, the next in two seconds
    client.v1.transfers.create(params=transfer_params(destination), options={"idempotency_key": "k1"})
    with pytest.raises(stripe.RateLimitError) as excinfo:
        client.v1.transfers.create(params=transfer_params(destination, amount=7), options={"idempotency_key": "k2"})

    error = excinfo.value
    assert error.http_status == 429 and error.error is not None and error.error.code == "rate_limit"
    assert error.error.type == "invalid_request_error" and "rate limit" in (error.error.message or "")
    assert error.headers is not None and error.headers.get("Stripe-Rate-Limited-Reason") == "global-rate"
    assert [t["amount"] for t in fake_stripe.objects("transfer")] == [1000]  # not performed
    sent = [r.idempotency_key for r in fake_stripe.requests if r.path == "/v1/transfers"]
    assert sent == ["k1", "k2"]  # the SDK did not retry the 429
    stats = fake_stripe.rate_stats()
    assert (stats.limit, stats.served, stats.limited) == (0.5, 1, 1)
    fake_stripe.limit_rate(None)  # nothing stored under k2: the same request now performs it
    client.v1.transfers.create(params=transfer_params(destination, amount=7), options={"idempotency_key": "k2"})
    assert [t["amount"] for t in fake_stripe.objects("transfer")] == [1000, 7]


@pytest.mark.parametrize("http_client", ["requests", "httpx"])
@pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes/text content:DeprecationWarning")
def test_drop_after_success_then_sdk_retry_returns_the_original_transfer(
    fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch, http_client: str
) -> None:
    fast_retries(monkeypatch)
    transport: stripe.HTTPClient = (
        stripe.RequestsClient(timeout=1)
        if http_client == "requests"
        else stripe.HTTPXClient(timeout=1, allow_sync_methods=True)
    )
    client = stripe.StripeClient(
        fake_stripe.api_key, base_addresses={"api": fake_stripe.url}, max_network_retries=2, http_client=transport
    )
    destination = onboarded_account(fake_stripe, client)
    fake_stripe.fail_next("/v1/transfers", "drop_after_success")

    transfer = client.v1.transfers.create(params=transfer_params(destination))  # SDK generates the key

    created = fake_stripe.objects("transfer")
    assert [t["id"] for t in created] == [transfer.id]
    attempts = [r for r in fake_stripe.requests if r.path == "/v1/transfers"]
    assert len(attempts) == 2 and attempts[0].idempotency_key == attempts[1].idempotency_key
    assert replayed(transfer) == "true"


def test_drop_after_success_without_retries_is_a_connection_error_but_the_transfer_exists(
    fake_stripe: FakeStripe,
) -> None:
    client = make_stripe_client(fake_stripe, max_network_retries=0)
    destination = onboarded_account(fake_stripe, client)
    fake_stripe.fail_next("/v1/transfers", "drop_after_success")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.transfers.create(params=transfer_params(destination), options={"idempotency_key": "kd"})
    [stored] = fake_stripe.objects("transfer")
    recovered = client.v1.transfers.create(params=transfer_params(destination), options={"idempotency_key": "kd"})
    assert recovered.id == stored["id"] and len(fake_stripe.objects("transfer")) == 1


def test_timeout_is_not_performed_and_the_sdk_retry_creates_one_transfer(
    fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast_retries(monkeypatch)
    client = make_stripe_client(fake_stripe, timeout=0.3, max_network_retries=1)
    destination = onboarded_account(fake_stripe, client)
    fake_stripe.fail_next("/v1/transfers", "timeout", method="POST")
    started = time.monotonic()
    transfer = client.v1.transfers.create(params=transfer_params(destination))
    assert time.monotonic() - started < fake_stripe.hang_seconds
    assert [t["id"] for t in fake_stripe.objects("transfer")] == [transfer.id]
    assert replayed(transfer) is None  # the first attempt did nothing


def test_stop_returns_promptly_while_a_request_hangs() -> None:
    server = FakeStripe(hang_seconds=30).start()
    serving = [t for t in threading.enumerate() if t.name == f"fake-stripe-{server.url}"]
    client = make_stripe_client(server, timeout=0.2, max_network_retries=0)
    server.fail_next(None, "timeout")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.balance.retrieve()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    assert len(serving) == 1 and not serving[0].is_alive()


# --- refunds, reversals, payouts --------------------------------------------------------------


def test_refunds_cannot_exceed_the_unrefunded_amount(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    unpaid = fake_stripe_client.v1.payment_intents.create(params={"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError, match="does not have a successful charge"):
        fake_stripe_client.v1.refunds.create(params={"payment_intent": unpaid.id})

    intent = paid_intent(fake_stripe, fake_stripe_client, amount=1000)
    partial = fake_stripe_client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 600, "metadata": {"reason": "damaged"}}
    )
    assert partial.id.startswith("re_") and partial.status == "succeeded" and partial.amount == 600
    assert partial.charge == intent.latest_charge and str(partial.balance_transaction).startswith("txn_")

    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        fake_stripe_client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 500})
    assert excinfo.value.http_status == 400 and excinfo.value.code == "amount_too_large"
    assert excinfo.value.user_message is not None and "($4.00)" in excinfo.value.user_message

    rest = fake_stripe_client.v1.refunds.create(params={"payment_intent": intent.id})
    assert rest.amount == 400
    assert fake_stripe_client.v1.charges.retrieve(str(intent.latest_charge)).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        fake_stripe_client.v1.refunds.create(params={"payment_intent": intent.id})
    assert excinfo.value.code == "charge_already_refunded"
    assert fake_stripe_client.v1.refunds.retrieve(partial.id).to_dict()["metadata"] == {"reason": "damaged"}


def test_transfer_reversals_track_the_reversed_amount(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    destination = onboarded_account(fake_stripe, fake_stripe_client)
    transfer = fake_stripe_client.v1.transfers.create(params=transfer_params(destination, amount=1000))
    reversal = fake_stripe_client.v1.transfers.reversals.create(transfer.id, params={"amount": 300})
    assert reversal.id.startswith("trr_") and reversal.object == "transfer_reversal"
    assert reversal.transfer == transfer.id and reversal.amount == 300

    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        fake_stripe_client.v1.transfers.reversals.create(transfer.id, params={"amount": 701})
    assert excinfo.value.code == "amount_too_large"

    fake_stripe_client.v1.transfers.reversals.create(transfer.id)  # the remaining 700
    after = fake_stripe_client.v1.transfers.retrieve(transfer.id)
    assert after.amount_reversed == 1000 and after.reversed is True and after.to_dict()["reversals"]["total_count"] == 2
    assert fake_stripe.balance(destination) == {"usd": 0} and fake_stripe.balance() == {"usd": 0}


def test_payouts_run_on_the_connected_account(fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient) -> None:
    destination = onboarded_account(fake_stripe, fake_stripe_client)
    fake_stripe_client.v1.transfers.create(params=transfer_params(destination, amount=1500))
    payout = fake_stripe_client.v1.payouts.create(
        params={"amount": 1500, "currency": "usd", "metadata": {"batch": "b1"}},
        options={"stripe_account": destination},
    )
    assert payout.id.startswith("po_") and payout.status == "pending" and str(payout.destination).startswith("ba_")
    with pytest.raises(stripe.InvalidRequestError) as excinfo:  # not visible from the platform
        fake_stripe_client.v1.payouts.retrieve(payout.id)
    assert excinfo.value.http_status == 404

    txns = fake_stripe_client.v1.balance_transactions.list(options={"stripe_account": destination})
    assert [(t.type, t.amount) for t in txns.data] == [("payout", -1500), ("payment", 1500)]
    failed = fake_stripe.fail_payout(payout.id)
    assert failed["type"] == "payout.failed" and failed["account"] == destination
    fetched = fake_stripe_client.v1.payouts.retrieve(payout.id, options={"stripe_account": destination})
    assert fetched.status == "failed" and fetched.failure_code == "account_closed"
    assert fake_stripe.balance(destination) == {"usd": 1500}


# --- lists and errors -------------------------------------------------------------------------


def test_transfer_list_paginates_newest_first_and_filters(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    first, second = (
        onboarded_account(fake_stripe, fake_stripe_client),
        onboarded_account(fake_stripe, fake_stripe_client),
    )
    made = [
        fake_stripe_client.v1.transfers.create(
            params=transfer_params(first if i % 2 else second, amount=100 + i, transfer_group=f"g{i % 2}")
        ).id
        for i in range(5)
    ]
    page = fake_stripe_client.v1.transfers.list(params={"limit": 2})
    assert page["object"] == "list" and page.url == "/v1/transfers" and page.has_more is True
    assert [t.id for t in page.data] == made[::-1][:2]
    following = fake_stripe_client.v1.transfers.list(params={"limit": 2, "starting_after": page.data[-1].id})
    assert [t.id for t in following.data] == made[::-1][2:4]
    assert [t.id for t in page.auto_paging_iter()] == made[::-1]

    grouped = fake_stripe_client.v1.transfers.list(params={"transfer_group": "g1"})
    assert {t.id for t in grouped.data} == {made[1], made[3]} and grouped.has_more is False
    to_second = fake_stripe_client.v1.transfers.list(params={"destination": second, "limit": 100})
    assert [t.id for t in to_second.data] == [made[4], made[2], made[0]]


def test_unknown_id_is_a_404_resource_missing(fake_stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        fake_stripe_client.v1.transfers.retrieve("tr_x")
    error = excinfo.value
    assert (error.http_status, error.code, error.param) == (404, "resource_missing", "id")
    assert isinstance(error.json_body, dict)
    assert error.json_body["error"]["type"] == "invalid_request_error"
    assert error.json_body["error"]["message"] == "No such transfer: 'tr_x'"


def test_transfers_need_an_existing_onboarded_destination(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        fake_stripe_client.v1.transfers.create(params=transfer_params("acct_missing"))
    assert (excinfo.value.http_status, excinfo.value.code, excinfo.value.param) == (
        400,
        "resource_missing",
        "destination",
    )
    fresh = fake_stripe_client.v1.accounts.create(params={"type": "express"})
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        fake_stripe_client.v1.transfers.create(params=transfer_params(fresh.id))
    assert excinfo.value.code == "insufficient_capabilities_for_transfer"


def test_bad_credentials_are_401_and_unknown_connected_accounts_403(fake_stripe: FakeStripe) -> None:
    wrong_key = stripe.StripeClient("sk_test_wrong", base_addresses={"api": fake_stripe.url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as excinfo:
        wrong_key.v1.balance.retrieve()
    assert excinfo.value.http_status == 401 and "Invalid API Key provided: sk_test_*rong" in str(excinfo.value)

    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(f"{fake_stripe.url}/v1/balance", timeout=2)
    assert raw.value.code == 401 and "did not provide an API key" in json.load(raw.value)["error"]["message"]

    client = make_stripe_client(fake_stripe, max_network_retries=0, stripe_account="acct_nobody")
    with pytest.raises(stripe.PermissionError):
        client.v1.balance.retrieve()


def test_form_bodies_decode_into_nested_dicts_and_lists() -> None:
    body = "amount=5&metadata[a b]=x%26y&metadata[0]=zero&expand[0]=data.source&expand[1]=x&items[0][price]=p&tags[]=t"
    assert parse_form(body) == {
        "amount": "5",
        "metadata": {"a b": "x&y", "0": "zero"},
        "expand": ["data.source", "x"],
        "items": [{"price": "p"}],
        "tags": ["t"],
    }


# --- webhooks ---------------------------------------------------------------------------------


def test_webhook_signatures_verify_with_the_real_sdk(fake_stripe: FakeStripe) -> None:
    event = fake_stripe.event("transfer.created", {"id": "tr_123", "object": "transfer", "amount": 100})
    assert event["object"] == "event" and event["id"].startswith("evt_") and event["api_version"] == stripe.api_version
    payload, headers = fake_stripe.webhook(event, WEBHOOK_SECRET)

    parsed = stripe.Webhook.construct_event(payload, headers["Stripe-Signature"], WEBHOOK_SECRET)
    assert parsed.id == event["id"] and parsed.type == "transfer.created" and parsed.data.object.id == "tr_123"

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, sign_payload(payload, "whsec_other"), WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload + b" ", headers["Stripe-Signature"], WEBHOOK_SECRET)
    stale = sign_payload(payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(payload, stale, WEBHOOK_SECRET)
    assert stripe.WebhookSignature.generate_signature_header(payload.decode(), WEBHOOK_SECRET, 1700000000) == (
        sign_payload(payload, WEBHOOK_SECRET, 1700000000)
    )


def test_reset_forgets_objects_keys_faults_and_requests(
    fake_stripe: FakeStripe, fake_stripe_client: stripe.StripeClient
) -> None:
    destination = onboarded_account(fake_stripe, fake_stripe_client)
    fake_stripe_client.v1.transfers.create(params=transfer_params(destination), options={"idempotency_key": "r"})
    fake_stripe.fail_next(None, "500")
    fake_stripe.reset()
    assert fake_stripe.objects("transfer") == [] and fake_stripe.requests == []
    assert fake_stripe_client.v1.balance.retrieve().object == "balance"  # the 500 fault is gone
