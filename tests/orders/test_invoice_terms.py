"""Invoice terms through the API (orders.service.invoices): an operator trusts a buyer organization
with net terms; its orders on the manual rail are placed on account (payable by a due date, never
expired unpaid), the ledger shows its receivable until the operator records the payment (once, in
full), overdue invoices are listed, and the audit proves receivables equal the open invoices."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from kernel import ledger
from kernel.clock import clock
from kernel.db import session_scope
from kernel.tasking import installed_celery
from marketplace.bootstrap import audit_ledger
from orders.models import Invoice
from orders.service.invoices import BUYER_ORG, RECEIVABLE
from tests.conftest import Backend
from tests.orders.test_buyer_orgs import Buyers
from tests.orders.world import ok


def _terms(client: TestClient, operator: dict[str, str], org_id: str, days: int | None) -> httpx.Response:
    response: httpx.Response = client.put(f"/v1/buyer-organizations/{org_id}/invoice-terms", headers=operator,
                                          json={"net_days": days})
    return response


def _receivable(env: Backend, org_id: str) -> int:
    with session_scope(env.runtime.sessions) as session:
        return ledger.balance_of(session, BUYER_ORG, uuid.UUID(org_id), RECEIVABLE, "USD")


def _audit(env: Backend) -> list[Any]:
    with session_scope(env.runtime.sessions) as session:
        return audit_ledger(session)


def _pay(client: TestClient, operator: dict[str, str], invoice: dict[str, Any], amount: int | None = None,
         currency: str = "USD") -> httpx.Response:
    response: httpx.Response = client.post(f"/v1/invoices/{invoice['id']}/payments", headers=operator, json={
        "amount": {"amount": invoice["amount"]["amount"] if amount is None else amount, "currency": currency},
        "reference": "BANK-TRANSFER-0042"})
    return response


def _order_of(client: TestClient, b: Buyers, order_id: str) -> dict[str, Any]:
    listed = ok(client.get("/v1/buyer-organizations/me/orders", headers=b.admin))
    return dict(next(o for o in listed if o["id"] == order_id))


def test_an_order_on_account_owes_a_receivable_until_its_payment_is_recorded_once_then_shares_are_booked(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    b = Buyers(client, operator, env)
    assert ok(_terms(client, operator, b.org_id, 30)) == {"buyer_organization_id": b.org_id, "net_days": 30}
    assert ok(client.get("/v1/buyer-organizations/me", headers=b.admin))["invoice_terms_days"] == 30
    placed = b.order(b.requester, ("X-BASIC", 2))  # 39.98, within the requester's limit
    assert placed["status"] == "awaiting_payment"
    invoice = _order_of(client, b, placed["id"])["invoice"]
    assert invoice["status"] == "open" and invoice["amount"] == {"amount": 3998, "currency": "USD"}
    due = (clock.now() + timedelta(days=30)).date().isoformat()
    assert invoice["overdue"] is False and invoice["due_at"][:10] == due
    assert _receivable(env, b.org_id) == -3998  # the organization owes it
    platform = ok(client.get("/v1/platform/balances", headers=operator))[0]
    assert (platform["receivable"], platform["invoiced"], platform["payees_pending"]) == (-3998, 3998, 0)
    assert _audit(env) == []

    # The unpaid-order timeout does not cancel an order on account; past its due date it is overdue.
    clock.advance(timedelta(days=31))
    assert installed_celery().tasks["orders.expire_unpaid"].apply().get() == 0
    overdue = ok(client.get("/v1/invoices?overdue=true", headers=operator))
    assert [i["id"] for i in overdue["items"]] == [invoice["id"]] and overdue["items"][0]["overdue"] is True
    assert [i["id"] for i in ok(client.get("/v1/buyer-organizations/me/invoices?overdue=true",
                                           headers=b.admin))["items"]] == [invoice["id"]]

    # Recorded once, in full: a wrong amount or currency writes nothing; a second recording is a 409.
    assert _pay(client, operator, invoice, amount=3997).status_code == 422
    assert _pay(client, operator, invoice, currency="EUR").status_code == 422
    assert _receivable(env, b.org_id) == -3998
    paid = ok(_pay(client, operator, invoice))
    assert (paid["status"], paid["overdue"], paid["payment_reference"]) == ("paid", False, "BANK-TRANSFER-0042")
    assert ok(_pay(client, operator, invoice), 409)
    assert _order_of(client, b, placed["id"])["status"] == "paid"
    assert _receivable(env, b.org_id) == 0
    platform = ok(client.get("/v1/platform/balances", headers=operator))[0]
    assert (platform["receivable"], platform["invoiced"], platform["clearing"]) == (0, 0, -3998)
    assert platform["payees_pending"] + platform["fees"] == 3998  # shares booked at payment, pending as always
    assert ok(client.get("/v1/invoices?overdue=true", headers=operator))["items"] == []
    assert [i["status"] for i in ok(client.get("/v1/invoices?status=paid", headers=operator))["items"]] == ["paid"]
    assert _audit(env) == []


def test_an_approved_order_is_invoiced_and_the_manual_mark_paid_collects_its_receivable(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    b = Buyers(client, operator, env)
    ok(_terms(client, operator, b.org_id, 14))
    above = b.order(b.requester, ("X-PRO", 2))  # 99.98: waits for an approver, not invoiced yet
    assert above["status"] == "awaiting_approval" and _order_of(client, b, above["id"])["invoice"] is None
    assert _receivable(env, b.org_id) == 0
    approved = ok(b.decide(b.approver, above["id"], "approve"))
    assert approved["invoice"]["status"] == "open" and approved["invoice"]["amount"]["amount"] == 9998
    assert _receivable(env, b.org_id) == -9998
    ok(client.post(f"/v1/orders/{above['id']}/mark-paid", headers=operator))
    ok(client.post(f"/v1/orders/{above['id']}/mark-paid", headers=operator))  # paying twice changes nothing
    assert _order_of(client, b, above["id"])["invoice"]["status"] == "paid"
    assert _receivable(env, b.org_id) == 0
    # Terms taken away: the next order is paid at once like everyone's, without an invoice.
    assert ok(_terms(client, operator, b.org_id, None))["net_days"] is None
    plain = b.order(b.requester, ("X-BASIC", 1))
    assert _order_of(client, b, plain["id"])["invoice"] is None
    assert _audit(env) == []


def test_only_operators_give_terms_and_an_organization_sees_only_its_own_invoices_page_by_page(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    b = Buyers(client, operator, env)
    assert _terms(client, b.admin, b.org_id, 30).status_code == 403
    assert _terms(client, operator, str(uuid.uuid4()), 30).status_code == 404
    for bad in (0, 181, "30", 1.5):
        assert client.put(f"/v1/buyer-organizations/{b.org_id}/invoice-terms", headers=operator,
                          json={"net_days": bad}).status_code == 422
    ok(_terms(client, operator, b.org_id, 30))
    first, second = b.order(b.requester, ("X-BASIC", 1)), b.order(b.requester, ("X-BASIC", 1))
    page = ok(client.get("/v1/buyer-organizations/me/invoices?limit=1", headers=b.admin))
    rest = ok(client.get(f"/v1/buyer-organizations/me/invoices?limit=1&cursor={page['next_cursor']}",
                         headers=b.admin))
    assert [i["order_id"] for i in page["items"] + rest["items"]] == [second["id"], first["id"]]
    assert rest["next_cursor"] is None
    assert client.get("/v1/buyer-organizations/me/invoices", headers=b.requester).status_code == 403
    other = Buyers(client, operator, env)
    assert ok(client.get("/v1/buyer-organizations/me/invoices", headers=other.admin))["items"] == []
    assert client.get("/v1/invoices?status=late", headers=operator).status_code == 422
    listed = ok(client.get(f"/v1/invoices?buyer_organization_id={b.org_id}", headers=operator))["items"]
    assert len(listed) == 2
    invoice = listed[0]
    assert client.post(f"/v1/invoices/{invoice['id']}/payments", headers=b.admin, json={
        "amount": invoice["amount"], "reference": "x"}).status_code == 403
    assert client.post(f"/v1/invoices/{uuid.uuid4()}/payments", headers=operator, json={
        "amount": invoice["amount"], "reference": "x"}).status_code == 404


def test_the_audit_finds_an_invoice_whose_postings_do_not_match_its_status(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    b = Buyers(client, operator, env)
    ok(_terms(client, operator, b.org_id, 30))
    placed = b.order(b.requester, ("X-BASIC", 1))
    with session_scope(env.runtime.sessions) as session:
        session.execute(update(Invoice).where(Invoice.order_id == uuid.UUID(placed["id"])).values(status="void"))
    findings = [f for f in _audit(env) if f.check == "receivables_match_open_invoices"]
    assert any("is void but posted ['invoice.issued']" in f.detail for f in findings)
    assert any("open invoices sum to 0" in f.detail for f in findings)


@pytest.mark.postgres_only
def test_two_operators_recording_one_invoices_payment_at_once_record_it_once(
    client: TestClient, operator: dict[str, str], env: Backend, live_server: str
) -> None:
    b = Buyers(client, operator, env)
    ok(_terms(client, operator, b.org_id, 30))
    for _ in range(3):
        placed = b.order(b.requester, ("X-BASIC", 1))
        invoice = _order_of(client, b, placed["id"])["invoice"]
        barrier = threading.Barrier(2)
        answers: list[int] = []

        def pay(invoice: dict[str, Any] = invoice, barrier: threading.Barrier = barrier,
                answers: list[int] = answers) -> None:
            with httpx.Client(base_url=live_server, timeout=60) as http:
                barrier.wait()
                answers.append(http.post(f"/v1/invoices/{invoice['id']}/payments", headers=operator, json={
                    "amount": invoice["amount"], "reference": "BANK"}).status_code)

        threads = [threading.Thread(target=pay) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers) == [200, 409]
    assert _receivable(env, b.org_id) == 0
    assert _audit(env) == []
