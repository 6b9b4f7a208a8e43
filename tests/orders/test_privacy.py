"""A buyer's privacy requests, run by an operator (orders.service.privacy): the export holds what
is stored about the email; the erasure removes the personal data while orders, commissions,
refunds and the journal stay intact, so the ledger audit stays clean."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel.db import session_scope
from kernel.mail import OutboxMail
from marketplace.bootstrap import audit_ledger
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


def test_erasing_a_buyer_pseudonymizes_every_order_and_mail_and_keeps_the_ledger_audit_clean(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    w = worked_example(client, operator)
    email = "erin@example.com"
    body = cart(w, ("X-PRO", 1), ("Y-KIT", 2), email=email, consents={"marketing": True})
    body["buyer"]["phone"] = "+1 555 0199"
    paid = ok(checkout(client, "a-store", body), 201)
    ok(client.post(f"/v1/orders/{paid['id']}/mark-paid", headers=operator))
    line = paid["lines"][1]["id"]
    ok(client.post(f"/v1/orders/{paid['id']}/refunds", headers=operator,
                   json={"lines": [{"order_line_id": line, "quantity": 1}]}), 201)
    unpaid = ok(checkout(client, None, cart(w, ("X-PRO", 1), email=email)), 201)
    other = ok(checkout(client, None, cart(w, ("X-PRO", 1), email="someone@example.com")), 201)
    ok(client.post(f"/v1/order-status/{paid['status_token']}/consent-withdrawals", json={"purposes": ["marketing"]}))
    before = ok(client.get("/v1/reports/growth?group_by=seller", headers=operator))

    exported = ok(client.get(f"/v1/privacy/exports?email={email}", headers=operator))
    assert sorted(o["id"] for o in exported["orders"]) == sorted([paid["id"], unpaid["id"]])
    assert exported["orders"][0]["buyer"]["email"] == email
    assert [c["purpose"] for c in exported["consent_changes"]] == ["marketing"]
    assert exported["contact_data_reads"]  # the operator's views of the order were logged

    erased = ok(client.post("/v1/privacy/erasures", json={"email": email}, headers=operator))
    assert erased["orders"] == 2 and erased["mails"] == 2 and erased["pseudonym"].endswith("@erased.invalid")
    order = ok(client.get(f"/v1/orders/{paid['id']}", headers=operator))
    assert order["buyer"] == {"name": "erased", "email": erased["pseudonym"], "phone": None,
                              "shipping_address": {"country": "US"}}
    assert order["total"]["amount"] == 7499 and order["refunded"]["amount"] == 1250  # the money is intact
    assert client.get(f"/v1/order-status/{paid['status_token']}").status_code == 404  # the link is gone
    assert ok(client.get(f"/v1/order-status/{other['status_token']}"))["buyer"]["email"] == "someone@example.com"
    assert ok(client.get(f"/v1/privacy/exports?email={email}", headers=operator))["orders"] == []
    assert ok(client.post("/v1/privacy/erasures", json={"email": email}, headers=operator))["orders"] == 0
    assert ok(client.get("/v1/reports/growth?group_by=seller", headers=operator)) == before  # one customer still
    with session_scope(env.runtime.sessions) as session:
        assert audit_ledger(session) == []
        assert not list(session.scalars(select(OutboxMail).where(OutboxMail.to_address == email)))
        assert "+1 555 0199" not in str(list(session.scalars(select(OutboxMail.body))))


def test_privacy_requests_are_for_operators_admin_and_support(client: TestClient, operator: dict[str, str]) -> None:
    w = worked_example(client, operator)
    seller = w.sellers["X"].headers
    assert client.get("/v1/privacy/exports?email=a@example.com", headers=seller).status_code == 403
    assert client.post("/v1/privacy/erasures", json={"email": "a@example.com"}, headers=seller).status_code == 403
    assert client.post("/v1/privacy/erasures", json={"email": "not-an-email"}, headers=operator).status_code == 422
