"""Payout paths take their row locks in the global lock order (kernel.locking), on real
PostgreSQL: a batch's freeze, send and record on both rails, a payout the rail refuses (its
claims given back), and a refund after a Stripe payout with the recovery it plans and sends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kernel.ledger import AFFILIATE, AVAILABLE, SELLER
from kernel.locking import LockRecorder
from tests.conftest import Backend
from tests.payouts.conftest import (
    StripeBackend,
    balance,
    items_of,
    make_payee,
    matured_sale,
    stripe_account,
    transfers_by_destination,
)
from tests.payouts.test_recoveries import refund_everything
from tests.payouts.test_stripe_rail import start

pytestmark = pytest.mark.postgres_only


def _no_violation(recorder: LockRecorder, *tables: str) -> None:
    assert recorder.violations() == []
    assert set(tables) <= recorder.tables_locked(), recorder.tables_locked()  # the paths ran


def test_a_stripe_batch_with_a_refused_payout_and_a_refund_recovered_from_a_paid_one_locks_in_the_global_order(
    stripe_env: StripeBackend, operator: dict[str, str]
) -> None:
    s = stripe_env
    seller_account = stripe_account(s.fake)
    seller = make_payee(s.env, SELLER, stripe_account=seller_account, bank=None)
    refusing = make_payee(s.env, AFFILIATE, stripe_account=stripe_account(s.fake, onboarded=False), bank=None)
    with LockRecorder() as recorder:
        sale = matured_sale(s.env, seller, refusing, seller_net=4000, commission=1200, fee=300)
        batch_id = start(s, operator)
        assert {i.owner_type: i.status for i in items_of(s.env, batch_id)} == {SELLER: "paid", AFFILIATE: "failed"}
        refund_everything(s, operator, sale.order_id)
    assert [t["amount_reversed"] for t in transfers_by_destination(s.fake)[seller_account]] == [4000]
    assert balance(s.env, SELLER, seller, AVAILABLE) == 0
    _no_violation(recorder, "payout_batches", "payout_items", "sub_orders", "commissions", "sellers",
                  "payout_recoveries")


def test_a_manual_rail_batch_locks_in_the_global_order(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    seller, affiliate = make_payee(env, SELLER), make_payee(env, AFFILIATE)
    with LockRecorder() as recorder:
        matured_sale(env, seller, affiliate, seller_net=4000, commission=1200, fee=300)
        created = client.post("/v1/payout-batches", json={"currency": "USD"}, headers=operator)
        assert created.status_code == 201, created.text
        approved = client.post(f"/v1/payout-batches/{created.json()['id']}/approve", headers=operator)
        assert approved.status_code == 200, approved.text
        assert {i.status for i in items_of(env, created.json()["id"])} == {"paid"}
    _no_violation(recorder, "payout_batches", "payout_items", "sub_orders", "commissions")
