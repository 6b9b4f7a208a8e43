"""Payout batches through the HTTP API on the manual rail (the embedded default): preview,
create, approve (the run happens in-process), progress, the journal and the bank export."""

from __future__ import annotations

import csv
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from kernel import ledger
from kernel.auth import Role
from kernel.clock import clock
from kernel.db import session_scope
from kernel.ledger import AFFILIATE, AVAILABLE, IN_TRANSIT, PAID_OUT, PLATFORM, SELLER, Posting
from kernel.tasking import installed_celery
from payouts.errors import InvalidItemTransition
from payouts.models import ItemStatus, PayoutItem
from payouts.service import planning, runner
from payouts.service.states import advance
from tests.conftest import Backend, bearer, issue_key
from tests.payouts.conftest import audit, balance, count_postings, credit, items_of, make_payee


def create(client: TestClient, operator: dict[str, str], currency: str = "USD", **extra: object) -> dict[str, Any]:
    response = client.post("/v1/payout-batches", json={"currency": currency, **extra}, headers=operator)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def approve(client: TestClient, operator: dict[str, str], batch_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/payout-batches/{batch_id}/approve", headers=operator)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def get_batch(client: TestClient, operator: dict[str, str], batch_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/payout-batches/{batch_id}", headers=operator)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_preview_says_who_is_paid_who_is_below_the_minimum_and_who_is_blocked_and_changes_nothing(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    paid_seller = make_payee(env, SELLER, name="Acme")
    paid_affiliate = make_payee(env, AFFILIATE, name="Guild")
    small = make_payee(env, SELLER)
    not_onboarded = make_payee(env, SELLER, payout_status="onboarding")
    rejected = make_payee(env, AFFILIATE, status="rejected")
    negative = make_payee(env, SELLER)
    settled = make_payee(env, SELLER)
    for payee, kind, amount in [(paid_seller, SELLER, 5000), (paid_affiliate, AFFILIATE, 2500), (small, SELLER, 999),
                                (not_onboarded, SELLER, 4000), (rejected, AFFILIATE, 3000), (negative, SELLER, -700),
                                (settled, SELLER, 1200), (settled, SELLER, -1200)]:
        credit(env, kind, payee, amount)
    credit(env, SELLER, paid_seller, 7000, "EUR")  # another currency's balance is not in a USD batch

    response = client.post("/v1/payout-batches", json={"currency": "usd", "preview": True}, headers=operator)

    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["rail"] == "manual" and plan["minimum"] == {"amount": 1000, "currency": "USD"}
    assert {(p["owner_id"], p["amount"]["amount"]) for p in plan["payees"]} == {
        (str(paid_seller), 5000), (str(paid_affiliate), 2500)}
    assert plan["total"] == {"amount": 7500, "currency": "USD"}
    assert [(p["owner_id"], p["amount"]["amount"]) for p in plan["below_minimum"]] == [(str(small), 999)]
    blocked = {p["owner_id"]: p["reason"] for p in plan["blocked"]}
    assert set(blocked) == {str(not_onboarded), str(rejected), str(negative)}
    assert "onboarding" in blocked[str(not_onboarded)]
    assert "rejected" in blocked[str(rejected)]
    assert "negative balance" in blocked[str(negative)]
    assert client.get("/v1/payout-batches", headers=operator).json()["items"] == []
    assert balance(env, SELLER, paid_seller, AVAILABLE) == 5000


def test_a_batch_waits_for_approval_then_runs_freezes_pays_and_leaves_the_ledger_clean(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    seller, affiliate = make_payee(env, SELLER, name="Acme"), make_payee(env, AFFILIATE, name="Guild")
    credit(env, SELLER, seller, 5000)
    credit(env, AFFILIATE, affiliate, 2500)

    batch = create(client, operator)

    assert batch["status"] == "awaiting_approval"
    assert batch["progress"]["queued"] == {"count": 2, "amount": {"amount": 7500, "currency": "USD"}}
    assert balance(env, SELLER, seller, AVAILABLE) == 5000  # nothing moves before the run

    approved = approve(client, operator, batch["id"])  # no broker: the run happens in-process

    assert approved["approved_by"].startswith("key:")
    done = get_batch(client, operator, batch["id"])
    assert done["status"] == "completed"
    assert done["items_done"] == done["items_total"] == 2
    assert done["progress"]["paid"] == {"count": 2, "amount": {"amount": 7500, "currency": "USD"}}
    for kind, payee in [(SELLER, seller), (AFFILIATE, affiliate)]:
        assert balance(env, kind, payee, AVAILABLE) == 0
        assert balance(env, kind, payee, IN_TRANSIT) == 0
    assert balance(env, PLATFORM, None, PAID_OUT) == 7500
    assert count_postings(env, "payout.freeze") == count_postings(env, "payout.paid") == 2
    assert audit(env) == []
    lines = list(csv.DictReader(Path(done["export_path"]).read_text().splitlines()))
    assert sorted((line["payee_id"], line["amount_minor"], line["amount"]) for line in lines) == sorted(
        [(str(seller), "5000", "50.00"), (str(affiliate), "2500", "25.00")])
    items = client.get(f"/v1/payout-batches/{batch['id']}/items", headers=operator).json()["items"]
    assert {i["rail_reference"] for i in items} == {line["reference"] for line in lines}
    assert client.get(f"/v1/payout-batches/{batch['id']}/reconciliation", headers=operator).json()["status"] == "ok"


def test_running_a_completed_batch_again_or_delivering_its_task_twice_pays_nobody_twice(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payees = [make_payee(env, SELLER) for _ in range(3)]
    for payee in payees:
        credit(env, SELLER, payee, 2000)
    batch = create(client, operator)
    approve(client, operator, batch["id"])
    export_path = Path(get_batch(client, operator, batch["id"])["export_path"])
    exported = export_path.read_text()

    again = installed_celery().tasks["payouts.run_batch"].apply(args=(batch["id"],)).get()
    runner.run_batch(env.runtime, uuid.UUID(batch["id"]))

    assert again["status"] == "completed" and again["paid"] == 0
    assert count_postings(env, "payout.paid") == 3
    assert balance(env, PLATFORM, None, PAID_OUT) == 6000
    assert export_path.read_text() == exported
    assert audit(env) == []


def test_balances_are_frozen_as_they_are_when_the_batch_runs_not_when_it_was_created(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    grows, shrinks = make_payee(env, SELLER), make_payee(env, SELLER)
    credit(env, SELLER, grows, 5000)
    credit(env, SELLER, shrinks, 3000)
    batch = create(client, operator)
    credit(env, SELLER, grows, 1000)  # a sale released meanwhile
    credit(env, SELLER, shrinks, -2500)  # a refund clawed most of it back meanwhile

    approve(client, operator, batch["id"])

    items = {i.owner_id: i for i in items_of(env, batch["id"])}
    assert (items[grows].status, items[grows].planned_amount, items[grows].amount) == ("paid", 5000, 6000)
    assert items[shrinks].status == "skipped" and "below the minimum" in (items[shrinks].failure_reason or "")
    assert balance(env, SELLER, grows, AVAILABLE) == 0
    assert balance(env, SELLER, shrinks, AVAILABLE) == 500  # untouched, paid another time
    assert get_batch(client, operator, batch["id"])["status"] == "completed"
    assert audit(env) == []


def test_a_negative_balance_blocks_the_payee_until_later_earnings_net_it(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payee = make_payee(env, AFFILIATE)
    credit(env, AFFILIATE, payee, 4200)
    approve(client, operator, create(client, operator)["id"])
    credit(env, AFFILIATE, payee, -700)  # a refund after the payout: the commission is clawed back

    plan = client.post("/v1/payout-batches", json={"currency": "USD", "preview": True}, headers=operator).json()
    assert [(b["owner_id"], b["amount"]["amount"]) for b in plan["blocked"]] == [(str(payee), -700)]
    refused = client.post("/v1/payout-batches", json={"currency": "USD"}, headers=operator)
    assert refused.status_code == 422 and refused.json()["type"].endswith("payout-nothing-to-pay")

    credit(env, AFFILIATE, payee, 3000)  # the next commissions
    second = create(client, operator)
    approve(client, operator, second["id"])

    assert [i.amount for i in items_of(env, second["id"])] == [2300]  # 3000 earned - 700 owed
    assert balance(env, AFFILIATE, payee, AVAILABLE) == 0
    assert balance(env, PLATFORM, None, PAID_OUT) == 4200 + 2300
    assert audit(env) == []


def test_one_open_batch_per_currency_and_a_cancelled_batch_frees_it_without_moving_money(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payee = make_payee(env, SELLER)
    credit(env, SELLER, payee, 5000)
    credit(env, SELLER, payee, 5000, "EUR")
    first = create(client, operator)

    second = client.post("/v1/payout-batches", json={"currency": "USD"}, headers=operator)
    eur = create(client, operator, "EUR")

    assert second.status_code == 409 and second.json()["type"].endswith("payout-batch-open")
    assert eur["status"] == "awaiting_approval"
    cancelled = client.post(f"/v1/payout-batches/{first['id']}/cancel", headers=operator)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["progress"]["skipped"]["count"] == 1
    assert client.post(f"/v1/payout-batches/{first['id']}/approve", headers=operator).status_code == 409
    assert balance(env, SELLER, payee, AVAILABLE) == 5000
    assert create(client, operator)["status"] == "awaiting_approval"
    listed = client.get("/v1/payout-batches", params={"currency": "USD", "limit": 1}, headers=operator).json()
    assert len(listed["items"]) == 1 and listed["next_cursor"]
    rest = client.get("/v1/payout-batches", params={"currency": "USD", "cursor": listed["next_cursor"]},
                      headers=operator).json()
    assert [b["status"] for b in rest["items"]] == ["cancelled"] and rest["next_cursor"] is None


def test_auto_approve_creates_an_approved_batch_that_runs_at_once(
    env: Backend, client: TestClient, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(env.runtime.settings, "payout_auto_approve", True)
    payee = make_payee(env, SELLER)
    credit(env, SELLER, payee, 1500)

    batch = create(client, operator)

    assert batch["status"] == "approved" and batch["approved_by"] == batch["created_by"]
    assert get_batch(client, operator, batch["id"])["status"] == "completed"
    assert balance(env, PLATFORM, None, PAID_OUT) == 1500


def test_the_scheduled_task_creates_one_batch_per_currency_and_skips_currencies_with_an_open_batch(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payee = make_payee(env, SELLER)
    credit(env, SELLER, payee, 1500)
    credit(env, SELLER, payee, 2500, "EUR")
    credit(env, SELLER, make_payee(env, SELLER), 10, "GBP")  # only below the minimum: no batch

    created = installed_celery().tasks["payouts.create_scheduled"].apply().get()
    again = installed_celery().tasks["payouts.create_scheduled"].apply().get()

    assert again == []
    batches = client.get("/v1/payout-batches", headers=operator).json()["items"]
    assert sorted(b["currency"] for b in batches) == ["EUR", "USD"]
    assert {b["id"] for b in batches} == set(created)
    assert {b["created_by"] for b in batches} == {"schedule"}
    assert {b["status"] for b in batches} == {"awaiting_approval"}


def test_payout_items_only_move_forward_in_the_service_and_in_the_database(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payee = make_payee(env, SELLER)
    credit(env, SELLER, payee, 1500)
    batch = create(client, operator)
    approve(client, operator, batch["id"])
    [item] = items_of(env, batch["id"])

    with pytest.raises(InvalidItemTransition):
        advance(item, ItemStatus.SENDING)
    for change in ({"status": "queued"}, {"status": "failed"}, {"amount": 1}, {"rail_reference": "tr_other"}):
        with pytest.raises(DBAPIError), session_scope(env.runtime.sessions) as session:
            session.execute(update(PayoutItem).where(PayoutItem.id == item.id).values(**change))
    with session_scope(env.runtime.sessions) as session:  # same-state writes are fine
        session.execute(update(PayoutItem).where(PayoutItem.id == item.id).values(status="paid", attempts=9))
    assert audit(env) == []


@pytest.mark.ledger_corrupted
def test_the_audit_catches_money_in_transit_that_no_payout_item_explains(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payee = make_payee(env, SELLER)
    credit(env, SELLER, payee, 1500)
    approve(client, operator, create(client, operator)["id"])
    assert audit(env) == []

    with session_scope(env.runtime.sessions) as session:  # money frozen behind the payouts' back
        ledger.post(session, kind="test.rogue", reference_type="test", reference_id=uuid.uuid4(), currency="USD",
                    postings=[Posting(SELLER, payee, AVAILABLE, -100), Posting(SELLER, payee, IN_TRANSIT, 100)])

    findings = audit(env)
    assert len(findings) == 1 and findings[0].startswith("payouts_never_pay_twice") and "in transit" in findings[0]


def test_batches_are_for_operators_only(env: Backend, client: TestClient) -> None:
    seller = make_payee(env, SELLER)
    headers = bearer(issue_key(env, Role.SELLER, seller))

    assert client.get("/v1/payout-batches", headers=headers).status_code == 403
    assert client.post("/v1/payout-batches", json={"currency": "USD", "preview": True},
                       headers=headers).status_code == 403
    assert client.get(f"/v1/payout-batches/{uuid.uuid4()}", headers=headers).status_code == 403
    assert client.get("/v1/payout-batches").status_code == 401


def test_unknown_batch_is_a_404_and_bad_input_a_422(client: TestClient, operator: dict[str, str]) -> None:
    assert client.get(f"/v1/payout-batches/{uuid.uuid4()}", headers=operator).status_code == 404
    assert client.post(f"/v1/payout-batches/{uuid.uuid4()}/approve", headers=operator).status_code == 404
    assert client.post("/v1/payout-batches", json={"currency": "XXX"}, headers=operator).status_code == 422
    assert client.post("/v1/payout-batches", json={"currency": "USD", "extra": 1},
                       headers=operator).status_code == 422


def test_beat_resumes_an_approved_batch_whose_run_task_was_lost(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payee = make_payee(env, SELLER)
    credit(env, SELLER, payee, 4200)
    with session_scope(env.runtime.sessions) as session:  # approved, but its run task never arrived
        batch, _ = planning.create_batch(session, env.settings, "manual", "USD", created_by="test")
        planning.approve(session, batch.id, approved_by="test", enqueue=False)
        batch_id = str(batch.id)
    assert installed_celery().conf.beat_schedule["payouts-resume-stalled"]["task"] == "payouts.resume_stalled"

    assert installed_celery().tasks["payouts.resume_stalled"].apply().get() == []  # not stalled yet
    clock.advance(timedelta(seconds=env.settings.payout_lease_seconds + 1))
    resumed = installed_celery().tasks["payouts.resume_stalled"].apply().get()

    assert resumed == [batch_id]
    assert get_batch(client, operator, batch_id)["status"] == "completed"
    assert balance(env, SELLER, payee, AVAILABLE) == 0


def test_a_batch_run_and_its_reconciliation_leave_system_events_in_the_audit_log(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    """The payout tasks commit in transactions of their own (one a payee), out of task_session's
    sight; each run that changed something still records what it did, as the system."""
    seller, affiliate = make_payee(env, SELLER), make_payee(env, AFFILIATE)
    credit(env, SELLER, seller, 4000)
    credit(env, AFFILIATE, affiliate, 1200)
    batch = create(client, operator)
    approve(client, operator, batch["id"])
    page = client.get("/v1/audit-events", params={"object_id": batch["id"]}, headers=operator)
    assert page.status_code == 200, page.text
    events = {e["action"]: e for e in page.json()["items"] if e["actor_type"] == "system"}
    run = events["task payouts.run_batch"]
    assert (run["object_type"], run["person_id"]) == ("task", None)
    assert (run["changes"]["status"], run["changes"]["paid"], run["changes"]["failed"]) == ("completed", 2, 0)
    assert events["task payouts.reconcile"]["changes"]["status"] == "ok"
