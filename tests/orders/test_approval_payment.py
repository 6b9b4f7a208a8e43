"""On the Stripe rail, approving a buyer organization's order creates its PaymentIntent (after the
decision commits, outside any transaction), exactly once even when two approvers approve at once;
its `succeeded` webhook then pays the order like any checkout's."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel.auth import Role
from kernel.db import session_scope
from marketplace.bootstrap import audit_ledger
from tests.conftest import Backend, bearer
from tests.fake_stripe.server import FakeStripe
from tests.orders.test_buyer_orgs import Buyers
from tests.orders.test_story import deliver_event
from tests.orders.world import ok
from tests.people.conftest import member_key


def _intents_of(fake: FakeStripe, order_id: str) -> list[dict[str, Any]]:
    return [i for i in fake.objects("payment_intent") if (i.get("metadata") or {}).get("order_id") == order_id]


def _order(client: TestClient, b: Buyers, order_id: str) -> dict[str, Any]:
    return dict(next(o for o in ok(client.get("/v1/buyer-organizations/me/orders", headers=b.admin))
                     if o["id"] == order_id))


def test_approving_an_order_on_the_stripe_rail_creates_its_payment_intent_and_the_webhook_pays_it(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe
) -> None:
    b = Buyers(client, operator, env)
    above = b.order(b.requester, ("X-PRO", 2))
    assert above["status"] == "awaiting_approval" and above["payment"]["rail"] == "stripe"
    assert _intents_of(stripe_env, above["id"]) == []  # nothing to pay before an approver says so
    approved = ok(b.decide(b.approver, above["id"], "approve"))
    assert approved["status"] == "awaiting_payment"
    [intent] = _intents_of(stripe_env, above["id"])
    assert (intent["amount"], intent["currency"], intent["transfer_group"]) == (9998, "usd", above["id"])
    payment = _order(client, b, above["id"])["payment"]
    assert payment["payment_intent_id"] == intent["id"] and payment["client_secret"]
    assert b.decide(b.admin, above["id"], "approve").status_code == 409
    assert len(_intents_of(stripe_env, above["id"])) == 1

    deliver_event(client, stripe_env.succeed_payment_intent(intent["id"]))
    assert _order(client, b, above["id"])["status"] == "paid"
    rejected = b.order(b.requester, ("X-BASIC", 3))
    ok(b.decide(b.approver, rejected["id"], "reject"))
    assert _intents_of(stripe_env, rejected["id"]) == []  # a rejected order is never payable
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


@pytest.mark.postgres_only
def test_two_approvers_approving_at_once_create_one_payment_intent(
    client: TestClient, operator: dict[str, str], env: Backend, stripe_env: FakeStripe, live_server: str
) -> None:
    b = Buyers(client, operator, env)
    _, key = member_key(env, Role.BUYER, uuid.UUID(b.org_id), "approver")
    second = bearer(key)
    for _ in range(3):
        order = b.order(b.requester, ("X-BASIC", 3))
        answers = b.decide_at_once(live_server, order["id"], (b.approver, "approve"), (second, "approve"))
        assert sorted(status for _, status in answers) == [200, 409]
        deadline = time.monotonic() + 20  # the PaymentIntent is made after the response, by the winner only
        while _order(client, b, order["id"])["payment"]["payment_intent_id"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        [intent] = _intents_of(stripe_env, order["id"])
        assert _order(client, b, order["id"])["payment"]["payment_intent_id"] == intent["id"]
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []
