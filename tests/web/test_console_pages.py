"""The operator console in a real browser, against the shared `marketplace serve` of the web
tests: today's figures, the approval queue, an order marked paid and refunded, a payout batch
run from the console to completed with its live progress and bank export, holds, the growth
charts, the audit log and the ledger audit; a viewer-role operator sees no action it may not
take. What a test needs it creates through the API first (the server is shared: no global counts)."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.embedded_server import newcomer_env
from tests.web.conftest import Site, accessible, log_in, shot

STOREFRONT = "makers-guild-demo"
OPERATOR_TEAM = "00000000-0000-7000-8000-000000000001"


@pytest.fixture(scope="module")
def operator_api(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.base_url, headers={"Authorization": f"Bearer {site.operator_key}"},
                      timeout=30) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def place_order(site: Site, quantity: int = 1) -> dict[str, Any]:
    """A buyer's order from the demo storefront (public checkout), awaiting payment on the manual rail."""
    products = ok(httpx.get(site.url(f"/v1/storefronts/{STOREFRONT}/products"), params={"limit": 50}))["items"]
    variant = next(v for p in products for v in p["variants"] if v["stock"] >= quantity)
    tag = uuid.uuid4().hex[:8]
    body = {"items": [{"variant_id": variant["id"], "quantity": quantity}],
            "buyer": {"email": f"buyer-{tag}@example.com", "name": f"Buyer {tag}"},
            "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}}
    key = {"Idempotency-Key": f"console-{tag}"}
    url = site.url(f"/v1/storefronts/{STOREFRONT}/orders")
    order: dict[str, Any] = ok(httpx.post(url, headers=key, json=body), 201)
    return order


def apply_as_seller(site: Site, name: str) -> dict[str, Any]:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    seller: dict[str, Any] = ok(httpx.post(site.url("/v1/sellers"), json={"name": name, "email": email}), 201)["seller"]
    return seller


@contextmanager
def operator_browser(site: Site) -> Iterator[httpx.Client]:
    """The pages without a browser: an httpx client logged in through the login form."""
    with httpx.Client(base_url=site.base_url, timeout=30) as browser:
        form = browser.get("/login")
        token = form.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
        browser.post("/login", data={"email": site.operator_email, "password": site.operator_password,
                                     "form_token": token})
        yield browser


def csrf_of(page_html: str) -> str:
    return page_html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def operator_login(page: Any, site: Site) -> None:
    log_in(page, site, site.operator_email, site.operator_password)
    assert page.url.endswith("/console"), page.url


def test_the_console_home_shows_todays_orders_sales_fees_refunds_and_what_is_due(
    page: Any, site: Site, operator_api: httpx.Client
) -> None:
    order = place_order(site)
    ok(operator_api.post(f"/v1/orders/{order['id']}/mark-paid"))
    today = ok(operator_api.get("/v1/reports/today"))
    usd = next(c for c in today["currencies"] if c["currency"] == "USD")
    assert usd["orders_paid"] >= 1 and usd["sales"] >= order["total"]["amount"]

    operator_login(page, site)

    main = page.get_by_role("main")
    assert "Today" in main.get_by_role("heading", level=1).inner_text()
    for label in ("Orders placed", "Orders paid", "Sales (paid today)", "Platform fees", "Due to payees now"):
        assert main.get_by_text(label, exact=True).first.is_visible(), label
    paid_shown = int(page.locator("[data-figure=orders_paid]").first.inner_text())
    assert paid_shown >= 1
    accessible(page)


def test_an_operator_approves_a_pending_seller_application(
    page: Any, site: Site, operator_api: httpx.Client
) -> None:
    name = f"Console Applicant {uuid.uuid4().hex[:6]}"
    applied = apply_as_seller(site, name)
    operator_login(page, site)
    page.get_by_role("link", name="Applications").click()
    assert page.get_by_role("cell", name=re.compile(name)).first.is_visible()
    accessible(page)
    shot(page, "console-applications")

    page.get_by_role("button", name=f"Approve {name}").click()

    assert f"{name} is approved." in page.get_by_role("status").first.inner_text()
    assert ok(operator_api.get(f"/v1/sellers/{applied['id']}"))["status"] == "approved"
    assert not page.get_by_role("button", name=f"Approve {name}").count()


def test_a_rejection_needs_a_reason_and_the_applicant_sees_it(
    page: Any, site: Site, operator_api: httpx.Client
) -> None:
    name = f"Console Reject {uuid.uuid4().hex[:6]}"
    applied = ok(httpx.post(site.url("/v1/affiliates"), json={
        "name": name, "email": f"{uuid.uuid4().hex[:8]}@example.com", "audience": "testers"}), 201)
    affiliate_id = (applied.get("affiliate") or applied)["id"]
    operator_login(page, site)
    page.goto(site.url("/console/applications"))
    row = page.get_by_role("row").filter(has_text=name)
    row.get_by_label("Reason").fill("not a real business")
    row.get_by_role("button", name=f"Reject {name}").click()
    assert f"{name} is rejected." in page.get_by_role("status").first.inner_text()
    assert ok(operator_api.get(f"/v1/affiliates/{affiliate_id}"))["status_reason"] == "not a real business"


def test_an_operator_marks_an_order_paid_then_refunds_one_unit_from_its_page(
    page: Any, site: Site, operator_api: httpx.Client
) -> None:
    order = place_order(site, quantity=2)
    operator_login(page, site)
    page.goto(site.url("/console/orders?status=awaiting_payment"))
    page.get_by_role("link", name=order["id"][-8:]).click()
    accessible(page)

    page.get_by_role("button", name="Mark paid").click()

    assert "marked paid" in page.get_by_role("status").first.inner_text()
    assert ok(operator_api.get(f"/v1/orders/{order['id']}"))["status"] == "paid"
    line = order["lines"][0]
    page.get_by_label(f"Units of {line['product_name']} to refund").fill("1")
    page.get_by_label("Reason (the buyer may see it)").fill("one arrived damaged")
    page.get_by_role("button", name="Refund").click()

    assert "refund is recorded" in page.get_by_role("status").first.inner_text()
    refunds = ok(operator_api.get(f"/v1/orders/{order['id']}/refunds"))
    assert [(r["amount"]["amount"], r["reason"]) for r in refunds] == [(line["unit_price"]["amount"],
                                                                      "one arrived damaged")]
    assert "one arrived damaged" in page.get_by_role("main").inner_text()
    accessible(page)
    shot(page, "console-order")


def test_a_refund_form_with_nothing_chosen_refunds_nothing_and_says_why(
    site: Site, operator_api: httpx.Client
) -> None:
    order = place_order(site)
    ok(operator_api.post(f"/v1/orders/{order['id']}/mark-paid"))
    with operator_browser(site) as browser:
        shown = browser.get(f"/console/orders/{order['id']}")
        answer = browser.post(f"/console/orders/{order['id']}/refunds",
                              data={"csrf_token": csrf_of(shown.text), "reason": "changed mind"})
        forged = browser.post(f"/console/orders/{order['id']}/refunds", data={"everything": "yes"})
    assert answer.status_code == 422 and "Everything left of the order" in answer.text
    assert forged.status_code == 403  # no CSRF token: the API refuses the write
    assert ok(operator_api.get(f"/v1/orders/{order['id']}/refunds")) == []


def test_orders_list_filters_by_status_and_pages(page: Any, site: Site) -> None:
    for _ in range(2):
        place_order(site)
    operator_login(page, site)
    page.goto(site.url("/console/orders?status=awaiting_payment"))
    badges = page.locator("tbody .badge").all_inner_texts()
    assert badges and set(badges) == {"awaiting payment"}
    accessible(page)


def test_a_payout_batch_runs_from_the_console_to_completed_and_its_export_downloads(
    page: Any, site: Site, operator_api: httpx.Client
) -> None:
    open_batches = ok(operator_api.get("/v1/payout-batches", params={"status": "awaiting_approval", "currency": "USD"}))
    for batch in open_batches["items"]:  # left by another test: this one plans its own
        ok(operator_api.post(f"/v1/payout-batches/{batch['id']}/cancel"))
    preview = ok(operator_api.post("/v1/payout-batches", json={"currency": "USD", "preview": True}))
    assert preview["payees"], "the demo's first start leaves balances to pay"
    operator_login(page, site)
    page.get_by_role("link", name="Payouts").click()
    page.get_by_label("Currency").fill("USD")
    page.get_by_role("button", name="Preview").click()
    assert page.get_by_role("heading", name="Would be paid").is_visible()
    accessible(page)
    shot(page, "console-payout-preview")

    page.get_by_role("button", name="Create the USD batch").click()
    assert "/console/payouts/" in page.url and "awaiting approval" in page.locator("#progress").inner_text()
    batch_url = page.url
    page.evaluate("window.stillTheSamePage = true")  # gone if the page reloads
    shot(page, "console-payout-awaiting")

    # A second tab approves (another operator could): this page follows without a reload.
    other = page.context.new_page()
    other.goto(batch_url)
    other.get_by_role("button", name="Approve and pay").click()
    assert "approved" in other.get_by_role("status").first.inner_text()
    other.close()

    page.wait_for_selector("[data-batch-status=completed]", timeout=30_000)  # htmx polled the fragment
    assert page.evaluate("window.stillTheSamePage") is True and page.url == batch_url
    progress = page.locator("#progress")
    assert progress.locator("[data-figure=paid]").inner_text() == str(len(preview["payees"]))
    assert progress.locator("[data-figure=remaining]").inner_text() == "0"
    assert progress.locator("[data-figure=failed]").inner_text() == "0"
    assert not progress.get_by_role("button", name="Approve and pay").count()  # the actions follow the state
    batch_id = batch_url.rstrip("/").rsplit("/", 1)[1]
    fragment = page.request.get(site.url(f"/console/payouts/{batch_id}/progress"))
    assert fragment.ok and "hx-trigger" not in fragment.text()  # a finished batch is not polled any more
    accessible(page)
    shot(page, "console-payout-batch")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV").click()
    lines = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8"))))
    assert len(lines) == len(preview["payees"])
    assert sum(int(line["amount_minor"]) for line in lines) == preview["total"]["amount"]
    page.get_by_role("button", name="Reconcile with the rail now").click()
    assert "Reconciliation with the rail is queued" in page.get_by_role("status").first.inner_text()


def test_the_progress_fragment_polls_until_a_batch_is_over_and_shows_paid_and_remaining(
    site: Site, operator_api: httpx.Client
) -> None:
    """Without a browser: the fragment a running batch answers carries the htmx trigger."""
    with operator_browser(site) as browser:
        batches = ok(operator_api.get("/v1/payout-batches", params={"limit": 1}))["items"]
        if not batches:  # this test ran first: plan one (the batch test cancels it)
            batches = [ok(operator_api.post("/v1/payout-batches", json={"currency": "USD"}), 201)]
        fragment = browser.get(f"/console/payouts/{batches[0]['id']}/progress")
    assert fragment.status_code == 200
    assert 'data-figure="paid"' in fragment.text and 'data-figure="remaining"' in fragment.text
    assert ("hx-trigger" in fragment.text) == (batches[0]["status"] in ("awaiting_approval", "approved", "running"))


def test_an_operator_places_and_releases_a_payout_hold(page: Any, site: Site, operator_api: httpx.Client) -> None:
    operator_login(page, site)
    page.get_by_role("link", name="Holds").click()
    page.get_by_label("Payee").select_option(label="Northwind Audio")
    reason = f"chargeback review {uuid.uuid4().hex[:6]}"
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Place the hold").click()
    assert "hold is placed" in page.get_by_role("status").first.inner_text()
    assert page.get_by_role("cell", name=reason).is_visible()
    accessible(page)
    shot(page, "console-holds")
    page.get_by_role("row").filter(has_text=reason).get_by_role("button", name=re.compile("Release")).click()
    assert "hold is released" in page.get_by_role("status").first.inner_text()
    holds = ok(operator_api.get("/v1/payout-holds", params={"active": "true"}))["items"]
    assert reason not in [h["reason"] for h in holds]


def test_the_growth_report_draws_the_levers_as_charts_with_their_tables(page: Any, site: Site) -> None:
    operator_login(page, site)
    page.get_by_role("link", name="Growth").click()
    for title in ("Customers per affiliate", "Average order (USD)", "Purchase frequency (orders per customer)",
                  "Where orders come from"):
        assert page.get_by_role("img", name=title).count() == 1, title
    assert page.get_by_role("cell", name="Makers Guild").first.is_visible()
    accessible(page)
    shot(page, "console-growth")
    page.goto(site.url("/console/growth?group_by=seller&days=365"))
    assert page.get_by_role("img", name="Customers per seller").count() == 1
    accessible(page)


def test_the_audit_log_lists_writes_and_filters_by_action(page: Any, site: Site, operator_api: httpx.Client) -> None:
    order = place_order(site)
    ok(operator_api.post(f"/v1/orders/{order['id']}/mark-paid"))
    operator_login(page, site)
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Object id").fill(order["id"])
    page.get_by_role("button", name="Filter").click()
    assert page.get_by_role("cell", name="POST /v1/orders/{order_id}/mark-paid").is_visible()
    accessible(page)
    shot(page, "console-audit")


def test_the_ledger_audit_runs_from_the_console_and_passes_every_check(page: Any, site: Site) -> None:
    operator_login(page, site)
    page.get_by_role("link", name="Ledger audit").click()
    page.get_by_role("button", name="Run the audit now").click()
    assert "Every check passed" in page.get_by_role("heading", level=2).first.inner_text()
    assert page.locator("tbody tr").count() >= 5
    assert not page.locator("tbody .badge-failed").count()
    accessible(page)
    shot(page, "console-ledger")


# --- a viewer ----------------------------------------------------------------------------------


def invited_viewer(site: Site, operator_api: httpx.Client) -> str:
    """An operator team member with the viewer role (invited by the admin, accepted with the
    link `marketplace mail` shows); returns their email (the password is the demo password)."""
    email = f"viewer-{uuid.uuid4().hex[:8]}@example.com"
    ok(operator_api.post(f"/v1/organizations/{OPERATOR_TEAM}/invitations", json={"email": email, "role": "viewer"}),
       201)
    outbox = subprocess.run([sys.executable, "-m", "marketplace.cli", "mail", "--limit", "50"], cwd=site.directory,
                            env=newcomer_env(), capture_output=True, text=True, timeout=60, check=True).stdout
    mail = outbox[outbox.index(email):]
    token = re.search(r"token=([A-Za-z0-9_\-]+)", mail)
    assert token, outbox
    ok(httpx.post(site.url("/v1/invitations/accept"), json={"token": token.group(1), "name": "Vera Viewer",
                                                            "password": site.demo_password}), 201)
    return email


def test_a_viewer_operator_sees_the_queues_and_batches_without_any_button_to_act(
    page: Any, site: Site, operator_api: httpx.Client
) -> None:
    name = f"Console Viewer Sees {uuid.uuid4().hex[:6]}"
    apply_as_seller(site, name)
    order = place_order(site)
    email = invited_viewer(site, operator_api)
    log_in(page, site, email, site.demo_password)
    assert page.url.endswith("/console")
    assert "(viewer," in page.get_by_role("banner").inner_text()
    nav = page.get_by_role("navigation", name="Main")
    assert not nav.get_by_role("link", name="Audit log").count()  # audit.read: not a viewer's

    page.goto(site.url("/console/applications"))
    assert page.get_by_role("cell", name=re.compile(name)).first.is_visible()
    assert not page.get_by_role("button", name=re.compile("Approve|Reject")).count()
    accessible(page)
    page.goto(site.url(f"/console/orders/{order['id']}"))
    assert not page.get_by_role("button", name="Mark paid").count()
    page.goto(site.url("/console/payouts?currency=USD"))
    assert not page.get_by_role("button", name=re.compile("Create the")).count()
    page.goto(site.url("/console/holds"))
    assert not page.get_by_role("button", name="Place the hold").count()
    shot(page, "console-viewer")
    # The API refuses anyway: a forged form post gets the API's 403 as the error page.
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
    answer = page.request.post(site.url(f"/console/orders/{order['id']}/mark-paid"), form={"csrf_token": csrf or ""},
                               max_redirects=0)
    assert answer.status == 403


def test_the_console_works_on_a_phone(phone_page: Any, site: Site) -> None:
    operator_login(phone_page, site)
    accessible(phone_page)
    phone_page.goto(site.url("/console/payouts"))
    accessible(phone_page)
    shot(phone_page, "console-phone-payouts")
