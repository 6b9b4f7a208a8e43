"""Buyer organizations through the API (orders.service.buyer_orgs): members with buying roles and
spending limits; an order above the placer's limit waits for an approver with its stock held;
approvers approve or reject it (two at once make one decision), and a hold nobody decided expires
through the beat job and gives the stock back."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel.auth import Role
from kernel.clock import clock
from kernel.db import session_scope
from kernel.mail import OutboxMail
from kernel.tasking import installed_celery
from marketplace.bootstrap import audit_ledger
from orders.models import OrderApproval
from tests.conftest import Backend, bearer
from tests.orders.world import World, ok, stock_of
from tests.people.conftest import member_key

ADDRESS = {"line1": "9 Dock Rd", "city": "Portsmouth", "postal_code": "PO1 1AA", "country": "GB"}


class Buyers:
    """A seller X with two levels, and a buyer organization: its admin, a requester with a limit
    of 50.00 USD per order, and an approver."""

    def __init__(self, client: TestClient, operator: dict[str, str], env: Backend) -> None:
        self.client = client
        self.world = World(client, operator)
        self.world.seller("X")
        self.world.product("X", "Studio Suite", [("X-BASIC", "Basic", 1999, 10), ("X-PRO", "Pro", 4999, 10)])
        signed = ok(client.post("/v1/buyer-organizations", json={
            "name": "Acme Buying", "email": f"ada-{uuid.uuid4().hex[:6]}@acme.example", "owner_name": "Ada Admin",
            "password": "acme-buying-passphrase"}), 201)
        self.org_id = signed["organization"]["id"]
        self.admin = bearer(signed["api_key"])
        self.requester_id, key = member_key(env, Role.BUYER, uuid.UUID(self.org_id), "requester")
        self.requester = bearer(key)
        _, key = member_key(env, Role.BUYER, uuid.UUID(self.org_id), "approver")
        self.approver = bearer(key)
        ok(client.put(f"/v1/buyer-organizations/me/members/{self.requester_id}/spending-limit", headers=self.admin,
                      json={"limit": {"amount": 5000, "currency": "USD"}}))
        self.address_id = ok(client.post("/v1/buyer-organizations/me/addresses", headers=self.admin,
                                         json={"label": "Dock", "address": ADDRESS}), 201)["id"]

    def order(self, headers: dict[str, str], *items: tuple[str, int], key: str | None = None) -> dict[str, Any]:
        body = {"items": [{"variant_id": self.world.variants[sku], "quantity": q} for sku, q in items],
                "shipping_address_id": self.address_id}
        return dict(ok(self.client.post("/v1/buyer-organizations/me/orders", json=body, headers={
            **headers, "Idempotency-Key": key or uuid.uuid4().hex}), 201))

    @staticmethod
    def decide_at_once(live_server: str, order_id: str,
                       *deciders: tuple[dict[str, str], str]) -> list[tuple[str, int]]:
        """Each (headers, verb) decides `order_id` at the same moment, through the live server:
        the (verb, status) answers, in the order they came back."""
        barrier = threading.Barrier(len(deciders))
        answers: list[tuple[str, int]] = []

        def decide(headers: dict[str, str], verb: str) -> None:
            with httpx.Client(base_url=live_server, timeout=60) as http:
                barrier.wait()
                response = http.post(f"/v1/buyer-organizations/me/orders/{order_id}/{verb}", headers=headers)
                answers.append((verb, response.status_code))

        threads = [threading.Thread(target=decide, args=decider) for decider in deciders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return answers

    def decide(self, headers: dict[str, str], order_id: str, verb: str, **body: str) -> httpx.Response:
        response: httpx.Response = self.client.post(f"/v1/buyer-organizations/me/orders/{order_id}/{verb}",
                                                    headers=headers, json=body or None)
        return response


def _approvals(env: Backend, order_id: str) -> list[tuple[str, uuid.UUID | None]]:
    with session_scope(env.runtime.sessions) as session:
        return [(a.decision, a.person_id) for a in session.scalars(
            select(OrderApproval).where(OrderApproval.order_id == uuid.UUID(order_id)))]


def test_an_order_above_the_members_limit_holds_its_stock_until_an_approver_approves_it_then_it_is_paid(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    b = Buyers(client, operator, env)
    mine = ok(client.get("/v1/buyer-organizations/me", headers=b.requester))
    assert {(m["role"], (m["spending_limit"] or {}).get("amount")) for m in mine["members"]} == {
        ("admin", None), ("requester", 5000), ("approver", None)}
    within = b.order(b.requester, ("X-BASIC", 2))  # 39.98: within 50.00
    assert within["status"] == "awaiting_payment"
    above = b.order(b.requester, ("X-PRO", 2))  # 99.98: above
    assert above["status"] == "awaiting_approval" and above["payment"]["rail"] == "manual"
    assert stock_of(env, b.world, "X-PRO") == 8  # held while it waits
    with session_scope(env.runtime.sessions) as session:
        asked = list(session.scalars(select(OutboxMail.to_address).where(OutboxMail.kind == "approval_request")))
    assert len(asked) == 2  # the admin and the approver, not the requester
    refused = ok(client.post(f"/v1/orders/{above['id']}/mark-paid", headers=operator), 409)
    assert "awaiting_approval" in refused["detail"]

    assert b.decide(b.requester, above["id"], "approve").status_code == 403  # a requester does not approve
    approved = ok(b.decide(b.approver, above["id"], "approve", reason="budget ok"))
    assert approved["status"] == "awaiting_payment" and approved["approval"]["decision"] == "approved"
    assert b.decide(b.approver, above["id"], "approve").status_code == 409  # decided once
    assert b.decide(b.admin, above["id"], "reject").status_code == 409
    ok(client.post(f"/v1/orders/{above['id']}/mark-paid", headers=operator))
    listed = ok(client.get("/v1/buyer-organizations/me/orders", headers=b.approver))
    assert {o["id"]: o["status"] for o in listed} == {within["id"]: "awaiting_payment", above["id"]: "paid"}
    assert listed[0]["placed_by_person_id"] == str(b.requester_id)
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


def test_a_rejected_order_gives_its_stock_back_and_nobody_approves_their_own_order(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    b = Buyers(client, operator, env)
    above = b.order(b.requester, ("X-PRO", 3))
    assert stock_of(env, b.world, "X-PRO") == 7
    rejected = ok(b.decide(b.approver, above["id"], "reject", reason="not this quarter"))
    assert rejected["status"] == "cancelled" and rejected["approval"]["reason"] == "not this quarter"
    assert stock_of(env, b.world, "X-PRO") == 10
    own = b.order(b.admin, ("X-BASIC", 1))  # the admin has no limit set: every order of theirs waits
    assert own["status"] == "awaiting_approval"
    assert b.decide(b.admin, own["id"], "approve").status_code == 403
    assert ok(b.decide(b.approver, own["id"], "approve"))["status"] == "awaiting_payment"
    other = Buyers(client, operator, env)  # another organization's approver finds nothing
    assert b.decide(other.approver, own["id"], "approve").status_code == 404


def test_a_limit_in_another_currency_or_removed_means_every_order_waits_and_strangers_are_refused(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    b = Buyers(client, operator, env)
    path = f"/v1/buyer-organizations/me/members/{b.requester_id}/spending-limit"
    ok(client.put(path, headers=b.admin, json={"limit": {"amount": 999_999, "currency": "EUR"}}))
    assert b.order(b.requester, ("X-BASIC", 1))["status"] == "awaiting_approval"
    ok(client.put(path, headers=b.admin, json={"limit": None}))
    assert b.order(b.requester, ("X-BASIC", 1))["status"] == "awaiting_approval"
    assert client.put(path, headers=b.requester, json={"limit": None}).status_code == 403
    stranger = f"/v1/buyer-organizations/me/members/{uuid.uuid4()}/spending-limit"
    assert client.put(stranger, headers=b.admin, json={"limit": None}).status_code == 404
    both = {"items": [{"variant_id": b.world.variants["X-BASIC"], "quantity": 1}], "shipping_address": ADDRESS,
            "shipping_address_id": b.address_id}
    assert client.post("/v1/buyer-organizations/me/orders", json=both,
                       headers={**b.requester, "Idempotency-Key": uuid.uuid4().hex}).status_code == 422
    assert client.get("/v1/buyer-organizations/me", headers=b.world.sellers["X"].headers).status_code == 403


def test_an_approval_hold_nobody_decided_expires_through_the_beat_job_and_releases_the_stock(
    client: TestClient, operator: dict[str, str], env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = Buyers(client, operator, env)
    above = b.order(b.requester, ("X-PRO", 4))
    task = installed_celery().tasks["orders.expire_approval_holds"]
    assert task.apply().get() == 0  # not yet
    later = clock.now() + timedelta(hours=env.runtime.settings.approval_hold_hours, minutes=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert task.apply().get() == 1
    assert task.apply().get() == 0  # once
    assert stock_of(env, b.world, "X-PRO") == 10
    assert _approvals(env, above["id"]) == [("expired", None)]
    assert b.decide(b.approver, above["id"], "approve").status_code == 409
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


@pytest.mark.postgres_only
def test_two_approvers_deciding_at_once_make_one_decision(
    client: TestClient, operator: dict[str, str], env: Backend, live_server: str
) -> None:
    b = Buyers(client, operator, env)
    _, key = member_key(env, Role.BUYER, uuid.UUID(b.org_id), "approver")
    second = bearer(key)
    for _ in range(3):
        order = b.order(b.requester, ("X-BASIC", 3))
        answers = b.decide_at_once(live_server, order["id"], (b.approver, "approve"), (second, "reject"))
        assert sorted(status for _, status in answers) == [200, 409], answers
        winner = next(verb for verb, status in answers if status == 200)
        decisions = _approvals(env, order["id"])
        assert [d for d, _ in decisions] == ["approved" if winner == "approve" else "rejected"]
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []


def test_a_buyer_organizations_order_chooses_each_sellers_shipping_rate_like_any_checkout(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    b = Buyers(client, operator, env)
    seller = b.world.sellers["X"]
    created = ok(client.post("/v1/shipping-profiles", headers=seller.headers, json={
        "name": "To the UK", "currency": "USD", "zones": ["GB"],
        "rates": [{"name": "Courier", "kind": "flat", "amount": 800}]}), 201)
    body: dict[str, Any] = {"items": [{"variant_id": b.world.variants["X-BASIC"], "quantity": 1}],
                            "shipping_address_id": b.address_id}
    missing = client.post("/v1/buyer-organizations/me/orders", json=body,
                          headers={**b.requester, "Idempotency-Key": uuid.uuid4().hex})
    assert missing.status_code == 422 and missing.json()["type"].endswith("/invalid-shipping"), missing.text
    body["shipping"] = [{"seller_id": seller.id, "rate_id": created["rates"][0]["id"]}]
    placed = ok(client.post("/v1/buyer-organizations/me/orders", json=body,
                            headers={**b.requester, "Idempotency-Key": uuid.uuid4().hex}), 201)
    assert (placed["total"]["amount"], placed["shipping"]["amount"]) == (1999 + 800, 800)
    assert [part["shipping_method"] for part in placed["sub_orders"]] == ["Courier"]
    twice = {**body, "shipping": body["shipping"] * 2}
    assert client.post("/v1/buyer-organizations/me/orders", json=twice,
                       headers={**b.requester, "Idempotency-Key": uuid.uuid4().hex}).status_code == 422
