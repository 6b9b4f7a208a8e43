"""The affiliate portal in a real browser: the market maker (Makers Guild) sees its commission for
an order placed on its storefront, creates a referral link and sees its clicks chart, manages its
storefront's listings; a viewer sees no write buttons; every page passes axe-core; a phone."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.web.conftest import Site, accessible, log_in, shot
from tests.web.seller_portal_kit import new_member, ok, open_newest_payout, paid_order, session_client


def _money(amount: int) -> str:
    return f"USD {amount // 100:,}.{amount % 100:02d}"


def test_the_market_maker_sees_its_commission_for_an_order_on_its_storefront(page: Any, site: Site) -> None:
    order = paid_order(site)
    log_in(page, site, site.affiliate_email, site.demo_password)
    assert page.url.endswith("/portal")
    client, me = session_client(site, site.affiliate_email, site.demo_password)
    client.close()
    mine = [c for c in order["commissions"] if c["affiliate_id"] == me["organization_id"]]
    assert mine, order["commissions"]
    home = page.get_by_role("main").inner_text()
    assert "Commissions in" in home and order["id"][-8:] in home
    accessible(page)
    shot(page, "portal-home")

    page.get_by_role("link", name="Commissions", exact=True).click()
    rows = page.locator("table.commissions tbody tr", has_text=order["id"][-8:])
    assert rows.count() == len(mine)
    shown = rows.all_inner_texts()
    for commission in mine:
        assert any(_money(commission["amount"]["amount"]) in row for row in shown), (commission, shown)
    accessible(page)
    shot(page, "portal-commissions")


def test_the_market_maker_creates_a_referral_link_and_sees_its_clicks_chart(page: Any, site: Site) -> None:
    log_in(page, site, site.affiliate_email, site.demo_password)
    page.get_by_role("link", name="Links & coupons").click()
    accessible(page)
    page.get_by_label("Code").fill("")
    page.get_by_role("button", name="Create link").click()
    assert "Link created" in page.get_by_role("status").inner_text()
    url = page.locator(".facts code").first.inner_text()
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}
    followed = httpx.get(site.url(urlsplit(url).path), headers=browser, follow_redirects=False)
    assert followed.status_code == 302, followed.text
    page.reload()
    chart = page.locator("figure.chart")
    assert chart.locator("svg[role=img]").count() == 1
    assert "Clicks per day" in chart.inner_text()
    assert "1 unique visitors" in page.locator(".facts").inner_text()
    today = [(cell.text_content() or "").strip() for cell in chart.locator("tbody tr").last.locator("td").all()]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", today[0]) and today[1] == "1", today  # the figures, as a table too
    accessible(page)
    shot(page, "portal-link")
    page.get_by_role("button", name="Deactivate link").click()
    assert "Link deactivated" in page.get_by_role("status").inner_text()
    assert "inactive" in page.get_by_role("heading", level=1).inner_text()


def test_the_market_maker_adds_a_new_product_of_its_sellers_to_its_storefront_and_removes_it(
    page: Any, site: Site
) -> None:
    name = f"Lumen Brushes {uuid.uuid4().hex[:6]}"
    seller, _me = session_client(site, site.seller_email, site.demo_password)
    try:
        made = ok(seller.post("/v1/products", json={
            "name": name, "currency": "USD", "requires_shipping": False,
            "variants": [{"sku": f"BRUSH-{uuid.uuid4().hex[:8]}", "name": "Set", "stock": 10,
                          "price": {"amount": 1500, "currency": "USD"}}]}), 201)
        ok(seller.post(f"/v1/products/{made['id']}/publish"))
    finally:
        seller.close()
    log_in(page, site, site.affiliate_email, site.demo_password)
    page.get_by_role("link", name="Storefront listings").click()
    assert "Lumen Studio" in page.locator("table").first.inner_text()
    page.get_by_label(re.compile("^Product")).select_option(label=f"{name} · Lumen Software · USD 15.00")
    page.get_by_role("button", name="Add to storefront").click()
    assert "added" in page.get_by_role("status").inner_text()
    accessible(page)
    shot(page, "portal-listings")
    page.get_by_role("button", name=f"Remove {name}").click()
    assert "removed" in page.get_by_role("status").inner_text()
    assert page.get_by_role("button", name=f"Remove {name}").count() == 0


def test_every_portal_page_passes_axe(page: Any, site: Site) -> None:
    log_in(page, site, site.affiliate_email, site.demo_password)
    for path in ("/portal/programs", "/portal/payouts", "/portal/team"):
        page.goto(site.url(path))
        accessible(page)
    page.goto(site.url("/portal/programs"))
    assert "Lumen Software" in page.get_by_role("main").inner_text()  # programs name their seller
    shot(page, "portal-programs")


def test_an_affiliate_joins_a_sellers_program_from_the_programs_page(page: Any, site: Site) -> None:
    log_in(page, site, "studio.specialists+demo@example.com", site.demo_password)
    page.get_by_role("link", name="Programs").click()
    page.get_by_role("button", name="Join Trailhead Outfitters").click()
    assert "Application sent" in page.get_by_role("status").inner_text()
    row = page.locator("tr", has_text="Trailhead Outfitters")
    assert re.search(r"approved|pending", row.inner_text()) and row.get_by_role("button").count() == 0


def test_a_portal_viewer_sees_no_write_buttons(page: Any, site: Site) -> None:
    email, password = new_member(site, site.affiliate_email, "viewer")
    log_in(page, site, email, password)
    assert page.url.endswith("/portal")
    page.goto(site.url("/portal/links"))
    assert page.get_by_role("button", name="Create link").count() == 0
    page.goto(site.url("/portal/listings"))
    assert page.get_by_role("button", name=re.compile("^Remove")).count() == 0
    assert page.get_by_role("button", name="Add to storefront").count() == 0
    page.goto(site.url("/portal/programs"))
    assert page.get_by_role("button", name=re.compile("^Join")).count() == 0
    page.goto(site.url("/portal/team"))
    assert page.get_by_role("button", name="Send invitation").count() == 0
    accessible(page)


def test_the_links_page_fits_a_phone_screen(phone_page: Any, site: Site) -> None:
    log_in(phone_page, site, site.affiliate_email, site.demo_password)
    phone_page.goto(site.url("/portal/links"))
    assert phone_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    accessible(phone_page)


def test_the_market_maker_opens_a_payout_from_its_list_and_sees_the_commissions_it_covers(
    page: Any, site: Site
) -> None:
    payout = open_newest_payout(page, site, site.affiliate_email, "portal")
    main = page.get_by_role("main").inner_text()
    assert "The commissions it covers" in main and _money(payout["amount"]["amount"]) in main
    rows = page.locator("main table tbody tr")
    assert rows.count() == max(1, len(payout["commissions"]))  # "None." fills an empty table
    for commission in payout["commissions"]:
        assert f"…{commission['commission_id'][-8:]}" in main
    accessible(page)
    shot(page, "portal-payout")
