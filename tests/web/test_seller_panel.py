"""The seller panel in a real browser: the demo seller (Lumen Software) ships its part of an order
and sees its balance, creates a product with two levels and publishes it; a viewer sees no write
buttons; every page passes axe-core; a phone-sized screen."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx

from tests.web.conftest import Site, accessible, log_in, shot
from tests.web.seller_portal_kit import new_member, open_newest_payout, paid_order, session_client

DEMO_LUMEN_PLAN = {"default": {"bps": 800}, "tiers": [{"min_orders": 3, "bps": 1200}],
                   "first_order_bonus": {"bps": 200}}  # platform/marketplace/demo.py


def _lumen_part(order: dict[str, Any]) -> str:
    """The sub-order of the order that is Lumen Software's (the one with its SKU)."""
    lumen_ids = {line["sub_order_id"] for line in order["lines"] if line["sku"].startswith("LUMEN")}
    assert len(lumen_ids) == 1, order
    return lumen_ids.pop()  # type: ignore[no-any-return]


def test_the_seller_accepts_and_ships_its_part_of_a_paid_order_and_sees_its_balance(page: Any, site: Site) -> None:
    order = paid_order(site)
    sub_id = _lumen_part(order)
    log_in(page, site, site.seller_email, site.demo_password)
    assert page.url.endswith("/seller")
    home = page.get_by_role("main")
    assert "Orders to act on" in home.inner_text() and sub_id[-8:] in home.inner_text()
    assert page.locator(".balance .stat").count() >= 3  # available, pending, in transit
    accessible(page)
    shot(page, "seller-home")

    page.get_by_role("link", name=f"…{sub_id[-8:]}").first.click()
    assert page.url.endswith(f"/seller/sub-orders/{sub_id}")
    accessible(page)
    page.get_by_role("button", name="Accept").click()
    assert "Sub-order accepted" in page.get_by_role("status").inner_text()
    page.get_by_label("Carrier").fill("UPS")
    page.get_by_label("Tracking number").fill("1ZPANEL0001")
    page.get_by_role("button", name="Mark shipped").click()
    main = page.get_by_role("main").inner_text()
    assert "Sub-order shipped" in main and "1ZPANEL0001" in main and "UPS" in main
    shot(page, "seller-sub-order-shipped")

    page.get_by_role("link", name="Balance & payouts").click()
    balance = page.locator(".balance").first.inner_text()
    assert "Pending" in balance and re.search(r"USD [1-9][\d,]*\.\d\d", balance), balance
    accessible(page)


def test_the_seller_creates_a_product_with_two_levels_sets_price_and_stock_adds_a_level_and_publishes_it(
    page: Any, site: Site
) -> None:
    log_in(page, site, site.seller_email, site.demo_password)
    page.get_by_role("link", name="Products").click()
    accessible(page)
    page.get_by_role("link", name="New product").click()
    name = f"Lumen Fonts {uuid.uuid4().hex[:6]}"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Currency").fill("USD")
    page.get_by_label("Shipped to the buyer").uncheck()
    for number, (level, price, stock) in enumerate((("Personal", "29.00", "100"), ("Studio", "99.50", "20")), 1):
        page.get_by_label(f"Level {number} name").fill(level)
        page.get_by_label(f"Level {number} SKU").fill(f"FONT-{level.upper()}-{uuid.uuid4().hex[:6]}")
        page.get_by_label(f"Level {number} price").fill(price)
        page.get_by_label(f"Level {number} stock").fill(stock)
    accessible(page)
    shot(page, "seller-new-product")
    page.get_by_role("button", name="Create product").click()
    assert "created (draft)" in page.get_by_role("status").inner_text()
    levels = page.locator("table.levels tbody tr")
    assert levels.count() == 2
    page.get_by_label("Price of Studio").fill("89.00")
    page.get_by_label("Stock of Studio").fill("25")
    page.get_by_role("button", name="Save Studio").click()
    assert page.get_by_label("Price of Studio").input_value() == "89.00"
    assert page.get_by_label("Stock of Studio").input_value() == "25"
    page.get_by_label("Level name").fill("Agency")
    page.get_by_label("SKU", exact=True).fill(f"FONT-AGENCY-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Price (USD)").fill("249")
    page.get_by_role("button", name="Add level").click()
    assert "Level Agency added" in page.get_by_role("status").inner_text()
    assert page.get_by_label("Price of Agency").input_value() == "249.00"
    page.get_by_role("button", name="Publish").click()
    assert "published" in page.get_by_role("heading", level=1).inner_text()
    accessible(page)
    shot(page, "seller-product")


def test_a_new_product_with_a_price_that_is_not_an_amount_is_shown_again_with_the_reason(
    page: Any, site: Site
) -> None:
    log_in(page, site, site.seller_email, site.demo_password)
    page.goto(site.url("/seller/products/new"))
    page.get_by_label("Name", exact=True).fill("Bad price")
    page.get_by_label("Level 1 name").fill("Only")
    page.get_by_label("Level 1 SKU").fill(f"BAD-{uuid.uuid4().hex[:6]}")
    page.get_by_label("Level 1 price").fill("12.345")
    page.get_by_role("button", name="Create product").click()
    assert "level 1: the price must be an amount in USD" in page.get_by_role("alert").inner_text()
    assert page.get_by_label("Name", exact=True).input_value() == "Bad price"  # what was typed stays


def test_every_seller_page_passes_axe_and_the_program_takes_a_plan_version_as_json(page: Any, site: Site) -> None:
    log_in(page, site, site.seller_email, site.demo_password)
    for path in ("/seller/sub-orders", "/seller/team"):
        page.goto(site.url(path))
        accessible(page)
    page.goto(site.url("/seller/program"))
    assert "Version 1" in page.get_by_role("main").inner_text()
    # The demo plan again (the site is shared: other tests' commissions stay as they were).
    page.get_by_label("Or the rules as JSON").fill(json.dumps(DEMO_LUMEN_PLAN))
    page.get_by_label("Note").fill("panel test")
    page.get_by_role("button", name="Add version").click()
    assert "Plan version added" in page.get_by_role("status").inner_text()
    current = page.locator("details.plan-version[open]").inner_text()
    assert "(current): panel test" in current and '"bps": 1200' in current
    accessible(page)
    shot(page, "seller-program")


def test_a_plan_version_from_the_simple_form_is_a_percentage_in_basis_points(page: Any, site: Site) -> None:
    log_in(page, site, "trailhead.outfitters+demo@example.com", site.demo_password)
    page.goto(site.url("/seller/program"))
    page.get_by_label("Default commission (%)").fill("10")  # the demo plan again, as a percentage
    page.get_by_role("button", name="Add version").click()
    assert "Plan version added" in page.get_by_role("status").inner_text()
    assert '"bps": 1000' in page.locator("details.plan-version[open]").inner_text()
    page.get_by_label("Default commission (%)").fill("ten")
    page.get_by_role("button", name="Add version").click()
    assert "Not a percentage" in page.get_by_role("main").inner_text()


def test_a_viewer_member_sees_the_pages_but_no_write_buttons(page: Any, site: Site) -> None:
    email, password = new_member(site, site.seller_email, "viewer")
    order = paid_order(site)
    sub_id = _lumen_part(order)
    log_in(page, site, email, password)
    assert page.url.endswith("/seller")
    page.goto(site.url(f"/seller/sub-orders/{sub_id}"))
    assert page.get_by_role("button", name="Accept").count() == 0
    assert page.get_by_role("button", name="Mark shipped").count() == 0
    page.goto(site.url("/seller/products"))
    assert page.get_by_role("link", name="New product").count() == 0
    page.locator("tbody a").first.click()
    assert page.get_by_role("button", name="Publish").count() == 0
    assert page.locator("table.levels input").count() == 0
    page.goto(site.url("/seller/program"))
    assert page.get_by_role("button", name="Add version").count() == 0
    page.goto(site.url("/seller/team"))
    assert page.get_by_role("button", name="Send invitation").count() == 0
    assert page.get_by_role("button", name=re.compile("^Remove")).count() == 0
    accessible(page)
    shot(page, "seller-team-viewer")
    # The API refuses the write anyway: the panel's form posted by hand is answered with 403.
    csrf = page.context.cookies()
    token = next(c["value"] for c in csrf if c["name"] == "mk_csrf")
    answer = page.request.post(site.url(f"/seller/sub-orders/{sub_id}/accept"), form={"csrf_token": token},
                               max_redirects=0)
    assert answer.status == 403


def test_the_owner_invites_changes_a_role_and_removes_a_member_on_the_team_page(page: Any, site: Site) -> None:
    email, _password = new_member(site, site.seller_email, "catalog")
    log_in(page, site, site.seller_email, site.demo_password)
    page.goto(site.url("/seller/team"))
    row = page.locator("table.team tr", has_text=email)
    row.get_by_role("combobox").select_option("fulfilment")
    row.get_by_role("button", name="Change role").click()
    assert "Role changed to fulfilment" in page.get_by_role("status").inner_text()
    assert page.locator("table.team tr", has_text=email).get_by_role("combobox").input_value() == "fulfilment"
    invited = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("Email").fill(invited)
    page.get_by_role("button", name="Send invitation").click()
    assert invited in page.get_by_role("main").inner_text()
    page.locator("table.team tr", has_text=email).get_by_role("button", name=re.compile("^Remove")).click()
    assert "Member removed" in page.get_by_role("status").inner_text()
    assert email not in page.locator("table.team").inner_text()
    accessible(page)


def test_the_orders_page_fits_a_phone_screen(phone_page: Any, site: Site) -> None:
    log_in(phone_page, site, site.seller_email, site.demo_password)
    phone_page.goto(site.url("/seller/sub-orders"))
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    accessible(phone_page)


def test_a_logged_out_visitor_is_sent_to_log_in_and_an_affiliate_is_refused_the_panel(site: Site) -> None:
    answer = httpx.get(site.url("/seller/products"))
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/seller/products"
    affiliate, _me = session_client(site, site.affiliate_email, site.demo_password)
    try:
        assert affiliate.get("/seller/products").status_code == 403
    finally:
        affiliate.close()


def test_the_seller_gives_an_affiliate_a_coupon_which_the_affiliate_sees_in_its_portal(page: Any, site: Site) -> None:
    code = f"PANEL-{uuid.uuid4().hex[:6].upper()}"
    log_in(page, site, site.seller_email, site.demo_password)
    page.goto(site.url("/seller/program"))
    page.get_by_label("Coupon code").fill(code)
    page.get_by_label("For affiliate").select_option(label="Makers Guild")
    page.get_by_role("button", name="Create coupon").click()
    assert f"Coupon {code} created" in page.get_by_role("status").inner_text()
    page.get_by_role("button", name=f"Deactivate {code}").click()
    assert "Coupon deactivated" in page.get_by_role("status").inner_text()
    assert "inactive" in page.locator("table.coupons tr", has_text=code).inner_text()
    log_in(page, site, site.affiliate_email, site.demo_password)
    page.goto(site.url("/portal/links"))
    row = page.locator("tr", has_text=code)
    assert row.count() == 1 and "inactive" in row.inner_text()


def test_the_seller_opens_a_payout_from_its_list_and_sees_the_sales_it_covers(page: Any, site: Site) -> None:
    payout = open_newest_payout(page, site, site.seller_email, "seller")
    main = page.get_by_role("main").inner_text()
    assert "The sales it covers" in main
    for sale in payout["sales"]:
        assert f"…{sale['sub_order_id'][-8:]}" in main and f"…{sale['order_id'][-8:]}" in main
    if payout["sales"]:
        page.get_by_role("link", name=f"…{payout['sales'][0]['sub_order_id'][-8:]}").click()
        assert page.url.endswith(f"/seller/sub-orders/{payout['sales'][0]['sub_order_id']}")
        page.go_back()
    accessible(page)
    shot(page, "seller-payout")
