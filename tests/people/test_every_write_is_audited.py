"""Every write operation leaves its audit event: a tour through the API calls each write
operation of the OpenAPI (successfully), every successful write is matched to the one audit event
with its request id and operation, and the operations the tour does not reach are listed with
the reason (the buyer's checkout and Stripe's webhook, whose own tables are their record)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from kernel import deps, permissions
from kernel.auth import Role
from kernel.clock import clock
from kernel.db import session_scope
from kernel.stripe_webhooks import WebhookEvent
from marketplace.app import create_app
from payouts.service import planning
from tests.affiliates.conftest import Market
from tests.conftest import Backend, bearer
from tests.payouts.conftest import credit, make_payee
from tests.people.conftest import PASSWORD, Inbox, key_for_password, member_key, ok, seller_with_owner, token_in

NOT_AUDITED = {
    # The buyer's checkout: no principal, the hot path's one-statement transaction; the order with
    # its idempotency key, storefront and attribution is the record.
    "POST /v1/checkout", "POST /v1/storefronts/{slug}/orders",
    # Stripe's signed webhook: the webhook inbox (one row per event id) is the record.
    "POST /v1/webhooks/stripe",
} | permissions.READ_ONLY_WRITES


NOT_TOURED = {
    # Audited like every write (the structural test above); the tour cannot reach it without a
    # refund that Stripe failed (tests/orders cover settling).
    "POST /v1/refunds/{refund_id}/settle",
    # Audited like every write (the structural test above); it needs an open alarm, which needs a
    # history of sales the tour does not build (tests/orders/test_partner_health.py resolves one).
    "POST /v1/alarms/{alarm_id}/resolve",
}


def _write_operations(client: TestClient) -> set[str]:
    spec = client.get("/openapi.json").json()
    return {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops if m.upper() != "GET"}


def test_every_write_route_records_through_one_of_the_two_audit_dependencies(env: Backend) -> None:
    """The structure behind the tour: a write route depends on the authorized principal or on the
    public-write audit, so a new write route is audited without anyone remembering to."""
    app = create_app(runtime=env.runtime)

    def calls(dependant: Any) -> set[Any]:
        found = {dependant.call}
        for sub in dependant.dependencies:
            found |= calls(sub)
        return found

    unaudited = []
    for route in app.router.routes:
        inner = getattr(route, "original_router", None)
        for sub in inner.routes if inner is not None else [route]:
            if not isinstance(sub, APIRoute) or set(sub.methods or ()) <= {"GET", "HEAD"}:
                continue
            if sub.endpoint.__module__.startswith("web."):
                continue  # a page writes only by calling the API (web.api), whose route records the event
            for method in sub.methods or ():
                op = f"{method} {sub.path}"
                wired = calls(sub.dependant) & {deps.authorized_principal, deps.audit_public_write}
                if op not in NOT_AUDITED and not wired:
                    unaudited.append(op)
    assert unaudited == []


class Recorder:
    def __init__(self) -> None:
        self.writes: list[tuple[str, str, int, str]] = []  # method, path, status, request id

    def __call__(self, response: httpx.Response) -> None:
        if response.request.method not in ("GET", "HEAD"):
            self.writes.append((response.request.method, response.request.url.path, response.status_code,
                                response.headers.get("x-request-id", "")))


def test_a_tour_of_every_write_operation_finds_each_ones_audit_event(
    mail_client: TestClient, inbox: Inbox, env: Backend, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = mail_client
    recorder = Recorder()
    client.event_hooks["response"] = [recorder]
    m = Market(client, operator)

    # --- sellers, products, programs -------------------------------------------------------------
    seller = seller_with_owner(client, operator)
    s = seller.key
    ok(client.patch("/v1/sellers/me", headers=s, json={"description": "We make tools"}))
    ok(client.post("/v1/sellers/me/payout-account", headers=s, json={"bank_reference": "IBAN DE00 1234"}))
    ok(client.post(f"/v1/sellers/{seller.id}/payout-account/verify", headers=operator))
    rejected = m.seller("To Reject")
    ok(client.post(f"/v1/sellers/{rejected.id}/reject", headers=operator, json={"reason": "not a fit"}))
    product = ok(client.post("/v1/products", headers=s, json={
        "name": "Saw", "description": "", "currency": "USD",
        "variants": [{"sku": f"SAW-{uuid.uuid4().hex[:6]}", "name": "Basic",
                      "price": {"amount": 2500, "currency": "USD"}, "stock": 50}]}), 201)
    pid, vid = product["id"], product["variants"][0]["id"]
    ok(client.patch(f"/v1/products/{pid}", headers=s, json={"name": "Saw Pro"}))
    extra = ok(client.post(f"/v1/products/{pid}/variants", headers=s, json={
        "sku": f"SAW-{uuid.uuid4().hex[:6]}", "name": "Deluxe", "price": {"amount": 4000, "currency": "USD"},
        "stock": 5}), 201)
    ok(client.patch(f"/v1/products/{pid}/variants/{extra['id']}", headers=s, json={"name": "Deluxe II"}))
    ok(client.post(f"/v1/products/{pid}/variants/{vid}/stock", headers=s, json={"delta": 5}))
    ok(client.post(f"/v1/products/{pid}/publish", headers=s))
    shipping = ok(client.post("/v1/shipping-profiles", headers=s, json={
        "name": "Domestic", "currency": "USD", "zones": ["US"],
        "rates": [{"name": "Standard", "kind": "flat", "amount": 500}]}), 201)
    ok(client.post(f"/v1/shipping-profiles/{shipping['id']}/archive", headers=s))
    other = m.product(m.seller("Other"), 1000)[0]
    ok(client.post(f"/v1/products/{other.product_id}/unpublish", headers=operator))
    ok(client.post(f"/v1/products/{other.product_id}/archive", headers=operator))
    program = ok(client.post("/v1/programs", headers=s, json={"requires_approval": True}), 201)["id"]
    ok(client.patch(f"/v1/programs/{program}", headers=s, json={"terms": "Be nice"}))
    ok(client.post(f"/v1/programs/{program}/plan-versions", headers=s,
                   json={"rules": {"default": {"bps": 800}}}), 201)
    ok(client.post(f"/v1/programs/{program}/quotas", headers=s,
                   json={"month": clock.now().strftime("%Y-%m"), "metric": "orders", "target": 10}), 201)
    ok(client.post(f"/v1/programs/{program}/simulations", headers=s,
                   json={"rules": {"default": {"bps": 900}}, "since": (clock.now() - timedelta(days=7)).isoformat()}))

    # --- affiliates, memberships, storefronts, links, coupons --------------------------------------
    affiliate = m.affiliate("Guild")
    a = affiliate.headers
    ok(client.patch("/v1/affiliates/me", headers=a, json={"audience": "makers"}))
    ok(client.post("/v1/affiliates/me/payout-account", headers=a, json={"bank_reference": "IBAN FR00 1"}))
    ok(client.post(f"/v1/affiliates/{affiliate.id}/payout-account/verify", headers=operator))
    ok(client.post(f"/v1/affiliates/{m.apply('Nope').id}/reject", headers=operator, json={"reason": "no"}))
    membership = m.join(affiliate, program)
    ok(client.post(f"/v1/programs/{program}/memberships/{membership['id']}/approve", headers=s, json={}))
    loser = m.affiliate("Loser")
    lost = m.join(loser, program)
    ok(client.post(f"/v1/programs/{program}/memberships/{lost['id']}/reject", headers=s, json={}))
    leaver = m.affiliate("Leaver")
    left = m.join(leaver, program)
    ok(client.post(f"/v1/programs/{program}/memberships/{left['id']}/approve", headers=s, json={}))
    ok(client.post(f"/v1/programs/{program}/memberships/{left['id']}/remove", headers=s, json={}))
    coupon = ok(client.post(f"/v1/programs/{program}/coupons", headers=s,
                            json={"code": f"SAVE{uuid.uuid4().hex[:4].upper()}", "affiliate_id": affiliate.id}), 201)
    ok(client.post(f"/v1/programs/{program}/coupons/{coupon['id']}/deactivate", headers=s))
    charter = ok(client.post(f"/v1/programs/{program}/charters", headers=s, json={"terms": {}}), 201)
    ok(client.post(f"/v1/programs/{program}/charter-acceptances", headers=a, json={"version": charter["version"]}), 201)
    slug = f"guild-{uuid.uuid4().hex[:6]}"
    ok(client.post("/v1/storefronts", headers=a, json={"slug": slug, "name": "Guild", "currency": "USD"}), 201)
    ok(client.patch(f"/v1/storefronts/{slug}", headers=a, json={"name": "The Guild"}))
    ok(client.post(f"/v1/storefronts/{slug}/listings", headers=a, json={"product_id": pid}), 201)
    link = m.link(affiliate)
    ok(client.post(f"/v1/referral-links/{link['id']}/deactivate", headers=a))

    # --- orders: checkout (not audited), paid, fulfilled, refunded -------------------------------------
    def order(quantity: int = 1) -> dict[str, Any]:
        result: dict[str, Any] = ok(client.post(f"/v1/storefronts/{slug}/orders", headers={
            "Idempotency-Key": uuid.uuid4().hex}, json={
            "items": [{"variant_id": vid, "quantity": quantity}], "buyer": {"email": "b@example.com", "name": "B"},
            "shipping_address": {"line1": "1 Way", "city": "Paris", "postal_code": "75001", "country": "FR"}}), 201)
        ok(client.post(f"/v1/orders/{result['id']}/mark-paid", headers=operator))
        return result

    _, shipper_key = member_key(env, Role.SELLER, uuid.UUID(seller.id), "fulfilment")
    shipper = bearer(shipper_key)
    first = order(2)
    sub = first["sub_orders"][0]["id"]
    ok(client.post(f"/v1/sub-orders/{sub}/accept", headers=shipper))
    ok(client.post(f"/v1/sub-orders/{sub}/ship", headers=shipper, json={"tracking_number": "TRK1"}))
    ok(client.post(f"/v1/sub-orders/{sub}/deliver", headers=shipper))
    refund = ok(client.post(f"/v1/sub-orders/{sub}/refunds", headers=shipper, json={
        "lines": [{"order_line_id": first["lines"][0]["id"], "quantity": 1}], "reason": "broken"}), 201)
    assert refund["id"]
    second = order()
    ok(client.post(f"/v1/sub-orders/{second['sub_orders'][0]['id']}/reject", headers=shipper, json={"reason": "gone"}))
    third = order()
    ok(client.post(f"/v1/orders/{third['id']}/refunds", headers=operator, json={"reason": "buyer asked"}), 201)
    ok(client.post(f"/v1/order-status/{third['status_token']}/consent-withdrawals", json={"purposes": ["marketing"]}))
    # --- a buyer organization: sign-up, a limit, an address, orders awaiting approval, decisions ----------
    buyer = ok(client.post("/v1/buyer-organizations", json={
        "name": "Acme", "email": "ada@acme.example", "owner_name": "Ada", "password": "acme-buying-passphrase"}), 201)
    buyer_admin = bearer(buyer["api_key"])
    approver_id, approver_key = member_key(env, Role.BUYER, uuid.UUID(buyer["organization"]["id"]), "approver")
    ok(client.put(f"/v1/buyer-organizations/me/members/{approver_id}/spending-limit", headers=buyer_admin,
                  json={"limit": {"amount": 100, "currency": "USD"}}))
    dock = ok(client.post("/v1/buyer-organizations/me/addresses", headers=buyer_admin, json={
        "label": "Dock", "address": {"line1": "1 Way", "city": "Paris", "postal_code": "75001", "country": "FR"}}), 201)
    ok(client.put(f"/v1/buyer-organizations/{buyer['organization']['id']}/invoice-terms", headers=operator,
                  json={"net_days": 30}))
    for verb in ("approve", "reject"):
        waiting = ok(client.post("/v1/buyer-organizations/me/orders", headers={
            **buyer_admin, "Idempotency-Key": uuid.uuid4().hex}, json={
            "items": [{"variant_id": vid, "quantity": 1}], "shipping_address_id": dock["id"]}), 201)
        ok(client.post(f"/v1/buyer-organizations/me/orders/{waiting['id']}/{verb}", headers=bearer(approver_key)))
    ok(client.post("/v1/buyer-accounts", json={"email": "bea@example.com", "name": "Bea", "password": PASSWORD}), 201)
    ok(client.post("/v1/buyer-accounts/confirm", json={"token": token_in(Inbox.body(inbox.to("bea@example.com")[-1]))}))
    invoice = ok(client.get("/v1/invoices", headers=operator))["items"][0]  # the approved order's, on account
    ok(client.post(f"/v1/invoices/{invoice['id']}/payments", headers=operator,
                   json={"amount": invoice["amount"], "reference": "BANK-1"}))
    assert client.delete(f"/v1/storefronts/{slug}/listings/{pid}", headers=a).status_code == 204
    ok(client.post("/v1/privacy/erasures", json={"email": "nobody@example.com"}, headers=operator))
    ok(client.post("/v1/relationship-contacts", headers=s, json={
        "buyer_organization_id": buyer["organization"]["id"], "name": "Cleo", "buying_role": "approver",
        "influence": 4}), 201)

    # --- payouts and holds ------------------------------------------------------------------------------
    payee = make_payee(env)
    credit(env, "seller", payee, 50_000)
    hold = ok(client.post("/v1/payout-holds", headers=operator,
                          json={"owner_type": "seller", "owner_id": str(payee), "reason": "check"}), 201)
    ok(client.post(f"/v1/payout-holds/{hold['id']}/release", headers=operator))
    batch = ok(client.post("/v1/payout-batches", headers=operator, json={"currency": "USD"}), 201)
    ok(client.post(f"/v1/payout-batches/{batch['id']}/cancel", headers=operator))
    batch = ok(client.post("/v1/payout-batches", headers=operator, json={"currency": "USD"}), 201)
    with monkeypatch.context() as patch:  # approved, its run not started yet (as with a busy worker)
        patch.setattr(planning, "enqueue_after_commit", lambda *_args, **_kw: None)
        ok(client.post(f"/v1/payout-batches/{batch['id']}/approve", headers=operator))
    ok(client.post(f"/v1/payout-batches/{batch['id']}/run", headers=operator), 202)
    ok(client.post(f"/v1/payout-batches/{batch['id']}/reconcile", headers=operator), 202)

    # --- keys, webhooks inbox ------------------------------------------------------------------------------
    made = ok(client.post("/v1/api-keys", headers=operator, json={"role": "seller", "subject_id": seller.id}), 201)
    ok(client.delete(f"/v1/api-keys/{made['id']}", headers=operator))
    with session_scope(env.runtime.sessions) as session:
        event = WebhookEvent(source="stripe", external_id=f"evt_{uuid.uuid4().hex}", type="test.nothing",
                             payload={"id": "evt"}, attempts=1)
        session.add(event)
        session.flush()
        event_id = event.id
    ok(client.post(f"/v1/webhooks/events/{event_id}/retry", headers=operator), 202)

    # --- people ---------------------------------------------------------------------------------------------
    owner = key_for_password(client, seller.owner_email or "", seller.id)
    mine = ok(client.post("/v1/me/api-keys", headers=owner, json={"role": "viewer"}), 201)
    ok(client.delete(f"/v1/me/api-keys/{mine['id']}", headers=owner))
    invitation = ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=owner,
                                json={"email": "ann@example.com", "role": "catalog"}), 201)
    accepted = ok(client.post("/v1/invitations/accept", json={
        "token": token_in(Inbox.body(inbox.to("ann@example.com")[0])), "name": "Ann", "password": PASSWORD}), 201)
    spare = ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=owner,
                           json={"email": "bob@example.com", "role": "viewer"}), 201)
    ok(client.delete(f"/v1/organizations/{seller.id}/invitations/{spare['id']}", headers=owner))
    members = f"/v1/organizations/{seller.id}/members/{accepted['person_id']}"
    ok(client.patch(members, headers=owner, json={"role": "viewer"}))
    assert client.delete(members, headers=owner).status_code == 204
    assert invitation["id"]
    browser = TestClient(client.app)
    browser.event_hooks["response"] = [recorder]
    other = ok(client.post("/v1/sessions", json={"email": seller.owner_email, "password": PASSWORD}), 201)
    csrf = {"X-CSRF-Token": ok(browser.post("/v1/sessions", json={"email": seller.owner_email,
                                                                  "password": PASSWORD}), 201)["csrf_token"]}
    ok(browser.delete(f"/v1/sessions/{other['id']}", headers=csrf))
    assert browser.delete("/v1/sessions/current", headers=csrf).status_code == 204
    secret = ok(client.post("/v1/me/totp", headers=owner))["secret"]
    ok(client.post("/v1/me/totp/confirm", headers=owner, json={"totp_code": pyotp.TOTP(secret).at(clock.now())}), 204)
    clock.advance(timedelta(seconds=31))
    ok(client.post("/v1/me/totp/disable", headers=owner, json={"totp_code": pyotp.TOTP(secret).at(clock.now())}), 204)
    assert client.post("/v1/password-resets", json={"email": seller.owner_email}).status_code == 202
    reset = token_in(Inbox.body(inbox.to(seller.owner_email or "")[-1]))
    assert client.post("/v1/password-resets/confirm", json={"token": reset, "password": PASSWORD}).status_code == 204
    clock.advance(timedelta(seconds=1))

    # --- every successful write has its event; the tour reached every audited operation ----------------
    succeeded = [w for w in recorder.writes if w[2] < 400]
    with session_scope(env.runtime.sessions) as session:
        from kernel.audit_log import AuditEvent

        by_request: dict[str | None, Any] = {}
        for row in session.query(AuditEvent).all():
            by_request.setdefault(row.request_id, []).append(row.action)
    reached, missing = set(), []
    for method, path, status, request_id in succeeded:
        actions = by_request.get(request_id, [])
        if len(actions) == 1:
            reached.add(actions[0])
        elif not any(path.startswith(p) for p in ("/v1/checkout", "/v1/webhooks/stripe")) \
                and not path.endswith("/orders"):
            missing.append(f"{method} {path} {status}: {actions}")
    assert missing == []
    assert _write_operations(client) - NOT_AUDITED - NOT_TOURED - reached == set()
