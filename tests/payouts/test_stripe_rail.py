"""The Stripe rail, through the real SDK against the fake Stripe server: one Transfer per payout
item with the item's idempotency key; timeouts and 500s retried with the same key and never
duplicated; definite refusals failed with the money back on the balance; reconciliation."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from kernel.clock import clock
from kernel.db import session_scope
from kernel.ledger import AFFILIATE, AVAILABLE, IN_TRANSIT, PAID_OUT, PLATFORM, SELLER
from kernel.outbound import WebhookDelivery
from orders.models import Commission
from tests.payouts.conftest import (
    StripeBackend,
    audit,
    balance,
    credit,
    items_of,
    make_payee,
    matured_sale,
    stripe_account,
    transfers_by_destination,
)


def funded_payee(s: StripeBackend, kind: str, amount: int) -> tuple[str, uuid.UUID]:
    """A payee with an onboarded connected account and `amount` available: (account, payee id)."""
    account = stripe_account(s.fake)
    payee = make_payee(s.env, kind, stripe_account=account, bank=None)
    credit(s.env, kind, payee, amount)
    return account, payee


def start(s: StripeBackend, operator: dict[str, str]) -> str:
    created = s.client.post("/v1/payout-batches", json={"currency": "USD"}, headers=operator)
    assert created.status_code == 201, created.text
    batch_id: str = created.json()["id"]
    assert s.client.post(f"/v1/payout-batches/{batch_id}/approve", headers=operator).status_code == 200
    return batch_id


def batch(s: StripeBackend, operator: dict[str, str], batch_id: str) -> dict[str, Any]:
    body: dict[str, Any] = s.client.get(f"/v1/payout-batches/{batch_id}", headers=operator).json()
    return body


def transfer_requests(s: StripeBackend) -> list[str | None]:
    return [r.idempotency_key for r in s.fake.requests if r.method == "POST" and r.path == "/v1/transfers"]


def test_each_payee_gets_one_transfer_to_its_account_keyed_by_its_payout_item(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    accounts = [stripe_account(s.fake) for _ in range(3)]
    payees = [make_payee(s.env, SELLER, stripe_account=a, bank=None) for a in accounts]
    for i, payee in enumerate(payees):
        credit(s.env, SELLER, payee, 1000 * (i + 2))

    batch_id = start(s, operator)

    items = {i.destination: i for i in items_of(s.env, batch_id)}
    by_destination = transfers_by_destination(s.fake)
    assert {a: len(t) for a, t in by_destination.items()} == dict.fromkeys(accounts, 1)
    for account in accounts:
        [transfer] = by_destination[account]
        item = items[account]
        assert (transfer["id"], transfer["amount"], transfer["currency"]) == (item.rail_reference, item.amount, "usd")
        assert transfer["transfer_group"] == f"payout-batch-{batch_id}"
        assert transfer["metadata"]["payout_item_id"] == str(item.id)
    assert Counter(transfer_requests(s)) == Counter(f"payout-{i.id}" for i in items.values())  # one each
    assert batch(s, operator, batch_id)["transfer_group"] == f"payout-batch-{batch_id}"
    assert balance(s.env, PLATFORM, None, PAID_OUT) == 2000 + 3000 + 4000
    assert audit(s.env) == []
    reconciliation = s.client.get(f"/v1/payout-batches/{batch_id}/reconciliation", headers=operator).json()
    assert (reconciliation["status"], reconciliation["paid_items"], reconciliation["rail_records"]) == ("ok", 3, 3)


def test_a_response_dropped_after_the_transfer_was_made_is_retried_with_the_same_key_and_not_duplicated(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    _, payee = funded_payee(s, AFFILIATE, 4200)
    s.fake.fail_next("/v1/transfers", "drop_after_success", method="POST")
    s.fake.fail_next("/v1/transfers", "500", method="POST")  # and the retry meets a 500 first

    batch_id = start(s, operator)

    [item] = items_of(s.env, batch_id)
    [transfer] = s.fake.objects("transfer")
    assert transfer_requests(s) == [f"payout-{item.id}"] * 3  # made, 500, replayed
    assert (item.status, item.rail_reference, transfer["amount"]) == ("paid", transfer["id"], 4200)
    assert balance(s.env, AFFILIATE, payee, AVAILABLE) == balance(s.env, AFFILIATE, payee, IN_TRANSIT) == 0
    assert balance(s.env, PLATFORM, None, PAID_OUT) == sum(t["amount"] for t in s.fake.objects("transfer"))
    assert audit(s.env) == []


def test_errors_that_outlast_the_sdk_retries_leave_the_item_sending_and_a_later_run_pays_it_once(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    _, payee = funded_payee(s, SELLER, 2500)
    s.fake.fail_next("/v1/transfers", "drop_after_success", method="POST")  # made, then unreachable:
    s.fake.fail_next("/v1/transfers", "500", count=2, method="POST")  # every SDK retry fails

    batch_id = start(s, operator)

    [item] = items_of(s.env, batch_id)
    running = batch(s, operator, batch_id)
    assert (item.status, item.attempts, item.rail_reference) == ("sending", 1, None)
    assert item.last_error and "500" not in (item.failure_reason or "")
    assert running["status"] == "running" and running["progress"]["sending"]["count"] == 1
    assert balance(s.env, SELLER, payee, IN_TRANSIT) == 2500  # frozen, not given back: it may be paid
    assert s.client.post(f"/v1/payout-batches/{batch_id}/run", headers=operator).json()["status"] == "running"
    [item] = items_of(s.env, batch_id)
    assert item.status == "sending"  # not due yet: nothing was sent again
    assert len(transfer_requests(s)) == 3

    clock.advance(timedelta(seconds=5))
    resumed = s.client.post(f"/v1/payout-batches/{batch_id}/run", headers=operator)

    assert resumed.status_code == 202
    [item] = items_of(s.env, batch_id)
    [transfer] = s.fake.objects("transfer")
    assert (item.status, item.attempts, item.rail_reference) == ("paid", 2, transfer["id"])
    assert set(transfer_requests(s)) == {f"payout-{item.id}"}
    assert batch(s, operator, batch_id)["status"] == "completed"
    assert audit(s.env) == []


def test_a_transfer_made_but_answered_with_a_500_is_retried_with_the_same_key_and_paid_once(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    funded_payee(s, SELLER, 3100)
    s.fake.fail_next("/v1/transfers", "500_after_success", method="POST")

    batch_id = start(s, operator)

    [item] = items_of(s.env, batch_id)
    [transfer] = s.fake.objects("transfer")
    assert (item.status, item.rail_reference, transfer["amount"]) == ("paid", transfer["id"], 3100)
    assert transfer_requests(s) == [f"payout-{item.id}"] * 2  # made (500), replayed with the same key
    assert balance(s.env, PLATFORM, None, PAID_OUT) == 3100


def test_an_item_resent_after_stripe_forgot_its_idempotency_key_adopts_the_transfer_already_made(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    funded_payee(s, SELLER, 2500)
    s.fake.fail_next("/v1/transfers", "drop_after_success", method="POST")  # made, then unreachable
    s.fake.fail_next("/v1/transfers", "500", count=2, method="POST")
    batch_id = start(s, operator)
    [item] = items_of(s.env, batch_id)
    assert item.status == "sending" and len(s.fake.objects("transfer")) == 1

    s.fake._idempotency.clear()  # Stripe keeps keys about 24 hours
    clock.advance(timedelta(hours=25))
    resumed = s.client.post(f"/v1/payout-batches/{batch_id}/run", headers=operator)

    assert resumed.status_code == 202
    [item] = items_of(s.env, batch_id)
    [transfer] = s.fake.objects("transfer")  # still one: the re-send found it instead of paying twice
    assert (item.status, item.rail_reference, transfer["amount"]) == ("paid", transfer["id"], 2500)
    assert balance(s.env, PLATFORM, None, PAID_OUT) == 2500
    assert audit(s.env) == []


def test_a_definite_refusal_fails_the_item_returns_the_money_and_claims_and_tells_the_payee(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    not_onboarded = stripe_account(s.fake, onboarded=False)  # Stripe refuses: no transfers capability
    affiliate = make_payee(s.env, AFFILIATE, stripe_account=not_onboarded, bank=None,
                           webhook_url="http://127.0.0.1:9/hooks")
    seller = make_payee(s.env, SELLER, stripe_account=stripe_account(s.fake), bank=None)
    sale = matured_sale(s.env, seller, affiliate, seller_net=5000, commission=1500)

    batch_id = start(s, operator)

    items = {i.owner_type: i for i in items_of(s.env, batch_id)}
    failed = items[AFFILIATE]
    assert failed.status == "failed" and "insufficient_capabilities_for_transfer" in (failed.failure_reason or "")
    assert items[SELLER].status == "paid"
    assert balance(s.env, AFFILIATE, affiliate, AVAILABLE) == 1500
    assert balance(s.env, AFFILIATE, affiliate, IN_TRANSIT) == 0
    done = batch(s, operator, batch_id)
    assert done["status"] == "completed"
    assert done["progress"]["failed"] == {"count": 1, "amount": {"amount": 1500, "currency": "USD"}}
    with session_scope(s.env.runtime.sessions) as session:
        commission = session.get(Commission, sale.commission_id)
        assert commission is not None and (commission.status, commission.payout_item_id) == ("available", None)
        [delivery] = session.scalars(select(WebhookDelivery)).all()
        assert (delivery.recipient_id, delivery.event_type) == (affiliate, "payout.failed")
        assert "insufficient_capabilities" in delivery.payload["data"]["failure_reason"]
    payee_view = s.client.get(f"/v1/payouts/{failed.id}", headers=operator).json()
    assert payee_view["commissions"] == []  # given back: the next payout covers it
    assert audit(s.env) == []


def test_reconciliation_reports_transfers_missing_reversed_or_unknown_at_stripe(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    accounts = [stripe_account(s.fake) for _ in range(2)]
    for account in accounts:
        credit(s.env, SELLER, make_payee(s.env, SELLER, stripe_account=account, bank=None), 3000)
    batch_id = start(s, operator)
    items = items_of(s.env, batch_id)
    group = f"payout-batch-{batch_id}"
    rail = s.runtime.rail
    stray = rail.transfer(destination=accounts[0], amount=3000, currency="USD", transfer_group=group,
                          metadata={"payout_item_id": str(items[0].id)}, idempotency_key=f"stray-{uuid.uuid4()}")
    unknown = rail.transfer(destination=accounts[1], amount=99, currency="USD", transfer_group=group,
                            metadata={}, idempotency_key=f"stray-{uuid.uuid4()}")
    assert items[1].rail_reference is not None
    rail.reverse_transfer(items[1].rail_reference, amount=500, idempotency_key=f"rev-{uuid.uuid4()}")

    queued = s.client.post(f"/v1/payout-batches/{batch_id}/reconcile", headers=operator)
    report = s.client.get(f"/v1/payout-batches/{batch_id}/reconciliation", headers=operator).json()

    assert queued.status_code == 202
    assert report["status"] == "mismatches" and report["rail_records"] == 4
    kinds = {(m["kind"], m["reference"]) for m in report["mismatches"]}
    assert kinds == {("duplicate_transfer", stray), ("unknown_transfer", unknown),
                     ("reversed_at_rail", items[1].rail_reference)}

    s.fake.reset()  # Stripe forgot everything: every paid item is missing there
    s.client.post(f"/v1/payout-batches/{batch_id}/reconcile", headers=operator)
    report = s.client.get(f"/v1/payout-batches/{batch_id}/reconciliation", headers=operator).json()
    assert sorted(m["kind"] for m in report["mismatches"]) == ["missing_at_rail", "missing_at_rail"]
