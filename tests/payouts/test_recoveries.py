"""A refund after a Stripe payout takes the clawed-back shares back from the payees' connected
accounts with Transfer Reversals of that payout: exactly the amounts, once, with the ledger and
Stripe agreeing; a payee whose newer earnings cover the clawback is netted instead."""

from __future__ import annotations

import uuid

from kernel.ledger import AFFILIATE, AVAILABLE, PAID_OUT, PLATFORM, SELLER
from kernel.tasking import installed_celery
from tests.payouts.conftest import (
    Sale,
    StripeBackend,
    audit,
    balance,
    credit,
    make_payee,
    matured_sale,
    stripe_account,
    transfers_by_destination,
)
from tests.payouts.test_stripe_rail import start


def paid_out_sale(s: StripeBackend, operator: dict[str, str]) -> tuple[Sale, uuid.UUID, uuid.UUID, str, str]:
    """A sale (seller net 4000, commission 1200, fee 300) paid out to both payees through Stripe."""
    seller_account, affiliate_account = stripe_account(s.fake), stripe_account(s.fake)
    seller = make_payee(s.env, SELLER, stripe_account=seller_account, bank=None)
    affiliate = make_payee(s.env, AFFILIATE, stripe_account=affiliate_account, bank=None)
    sale = matured_sale(s.env, seller, affiliate, seller_net=4000, commission=1200, fee=300)
    start(s, operator)
    assert balance(s.env, PLATFORM, None, PAID_OUT) == 5200
    return sale, seller, affiliate, seller_account, affiliate_account


def refund_everything(s: StripeBackend, operator: dict[str, str], order_id: uuid.UUID) -> None:
    refunded = s.client.post(f"/v1/orders/{order_id}/refunds", json={"reason": "returned"}, headers=operator)
    assert refunded.status_code == 201, refunded.text


def reversal_requests(s: StripeBackend) -> list[str | None]:
    return [r.idempotency_key for r in s.fake.requests if r.method == "POST" and r.path.endswith("/reversals")]


def test_a_refund_after_a_stripe_payout_reverses_each_payees_transfer_by_exactly_what_was_clawed_back(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    sale, seller, affiliate, seller_account, affiliate_account = paid_out_sale(s, operator)

    refund_everything(s, operator, sale.order_id)

    transfers = transfers_by_destination(s.fake)
    assert [t["amount_reversed"] for t in transfers[seller_account]] == [4000]
    assert [t["amount_reversed"] for t in transfers[affiliate_account]] == [1200]
    assert balance(s.env, SELLER, seller, AVAILABLE) == 0
    assert balance(s.env, AFFILIATE, affiliate, AVAILABLE) == 0
    assert balance(s.env, PLATFORM, None, PAID_OUT) == 0
    payouts = s.client.get("/v1/payouts", headers=operator).json()["items"]  # every payee's, for an operator
    seller_payout = next(p for p in payouts if p["owner_id"] == str(seller))
    detail = s.client.get(f"/v1/payouts/{seller_payout['id']}", headers=operator).json()
    [recovery] = detail["recoveries"]
    assert (recovery["status"], recovery["amount"]["amount"]) == ("recovered", 4000)
    assert recovery["rail_reference"] == transfers[seller_account][0]["reversals"]["data"][0]["id"]
    assert audit(s.env) == []

    again = installed_celery().tasks["payouts.recover_clawbacks"].apply().get()  # the beat sweep: nothing owed
    assert again["planned"] == 0 and len(reversal_requests(s)) == 2


def test_newer_earnings_that_cover_the_clawback_are_netted_and_no_transfer_is_reversed(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    sale, seller, affiliate, seller_account, affiliate_account = paid_out_sale(s, operator)
    credit(s.env, SELLER, seller, 5000)  # the seller sold more since the payout
    credit(s.env, AFFILIATE, affiliate, 200)  # the affiliate earned a little: 1000 still owed

    refund_everything(s, operator, sale.order_id)

    assert balance(s.env, SELLER, seller, AVAILABLE) == 1000  # 5000 - 4000, paid with the next payout
    assert balance(s.env, AFFILIATE, affiliate, AVAILABLE) == 0  # 200 - 1200 + 1000 taken back
    transfers = transfers_by_destination(s.fake)
    assert transfers[seller_account][0]["amount_reversed"] == 0
    assert transfers[affiliate_account][0]["amount_reversed"] == 1000
    assert len(reversal_requests(s)) == 1
    assert balance(s.env, PLATFORM, None, PAID_OUT) == 5200 - 1000
    assert audit(s.env) == []


def test_a_reversal_whose_response_is_lost_is_retried_with_the_same_key_and_made_once(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    sale, seller, affiliate, seller_account, affiliate_account = paid_out_sale(s, operator)
    s.fake.fail_next("/v1/transfers/", "drop_after_success", count=1, method="POST")
    s.fake.fail_next("/v1/transfers/", "500", count=6, method="POST")  # the SDK gives up: retry later

    refund_everything(s, operator, sale.order_id)
    owed = balance(s.env, SELLER, seller, AVAILABLE) + balance(s.env, AFFILIATE, affiliate, AVAILABLE)
    assert owed < 0  # not all recovered yet: Stripe is failing

    swept = installed_celery().tasks["payouts.recover_clawbacks"].apply().get()  # beat, once Stripe answers

    assert swept["retry"] == []
    transfers = transfers_by_destination(s.fake)
    for account, clawed in ((seller_account, 4000), (affiliate_account, 1200)):
        [transfer] = transfers[account]
        assert (transfer["amount_reversed"], transfer["reversals"]["total_count"]) == (clawed, 1)
    keys = reversal_requests(s)
    assert len(set(keys)) == 2 and len(keys) > 2  # two recoveries, sent more than once with their keys
    assert balance(s.env, SELLER, seller, AVAILABLE) == balance(s.env, AFFILIATE, affiliate, AVAILABLE) == 0
    assert balance(s.env, PLATFORM, None, PAID_OUT) == 0
    assert audit(s.env) == []
