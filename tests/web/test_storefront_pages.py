"""The storefront buyers order from (/s/{slug}): listing with search, seller filter and pages, a
product's levels and stock, a cart across sellers kept in a cookie and priced again from the API,
checkout with one Idempotency-Key per attempt, payment instructions, the order's secret link, a
referral link's attribution; in a real browser on a desktop, a phone and by keyboard alone."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.web.conftest import Site, accessible, shot
from tests.web.seller_portal_kit import session_client

SLUG = "makers-guild-demo"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
BUYER = {"email": "ada.buyer@example.com", "name": "Ada Buyer", "line1": "1 Main St", "city": "Springfield",
         "postal_code": "12345", "country": "US"}


def _api(site: Site) -> httpx.Client:
    return httpx.Client(base_url=site.base_url, headers={"Authorization": f"Bearer {site.operator_key}"})


def _products(site: Site) -> list[dict[str, Any]]:
    with httpx.Client(base_url=site.base_url) as client:
        items: list[dict[str, Any]] = client.get(f"/v1/storefronts/{SLUG}/products").json()["items"]
    return items


def _two_sellers(site: Site) -> tuple[dict[str, Any], dict[str, Any]]:
    """A product in stock from each of two sellers of the demo storefront."""
    by_seller: dict[str, dict[str, Any]] = {}
    for product in _products(site):
        if any(v["stock"] > 10 for v in product["variants"]):
            by_seller.setdefault(product["seller_name"], product)
    first, second = list(by_seller.values())[:2]
    return first, second


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found, name
    return found.group(1)


def _add(client: httpx.Client, product: dict[str, Any], quantity: int = 1) -> None:
    page = client.get(f"/s/{SLUG}/products/{product['id']}")
    variant = next(v for v in product["variants"] if v["stock"] > 10)
    answer = client.post(f"/s/{SLUG}/cart", data={"form_token": _field(page.text, "form_token"), "action": "add",
                                                   "product_id": product["id"], "variant_id": variant["id"],
                                                   "quantity": str(quantity)})
    assert answer.status_code == 303 and answer.headers["location"] == f"/s/{SLUG}/cart"


def _set_cart(client: httpx.Client, value: str) -> None:
    """The cart cookie as a buyer could edit it by hand."""
    client.cookies.delete("mk_cart")
    client.cookies.set("mk_cart", value, domain=client.base_url.host, path=f"/s/{SLUG}")


def _order_id(client: httpx.Client, answer: httpx.Response) -> str:
    """The order a checkout answer shows: the order page it redirects to, or the page it renders."""
    if answer.status_code == 303:
        answer = client.get(answer.headers["location"])
    assert answer.status_code == 200, answer.text[-2000:]
    found = re.search(r"Order <code>([0-9a-f-]{36})</code>", answer.text)
    assert found, answer.text[-2000:]
    return found.group(1)


def test_the_listing_searches_filters_by_seller_and_pages_through_the_api(site: Site) -> None:
    products = _products(site)
    word = products[0]["name"].split()[0]
    with httpx.Client(base_url=site.base_url) as client:
        listing = client.get(f"/s/{SLUG}")
        assert listing.status_code == 200 and all(p["name"] in listing.text for p in products)
        searched = client.get(f"/s/{SLUG}", params={"q": word})
        assert products[0]["name"] in searched.text
        seller_id = products[0]["seller_id"]
        filtered = client.get(f"/s/{SLUG}", params={"seller": seller_id}).text
        assert all((p["name"] in filtered) == (p["seller_id"] == seller_id) for p in products
                   if not any(p["name"] in o["name"] for o in products if o is not p))
        assert "No product matches" in client.get(f"/s/{SLUG}", params={"q": "zzqx-nothing"}).text
        assert client.get(f"/s/{SLUG}", params={"cursor": "garbage"}).status_code == 200  # back to page one
        assert client.get("/s/no-such-storefront").status_code == 404
        start = client.get("/", headers={"Accept": "text/html"}).text  # the start page reads the directory
        assert f'href="/s/{SLUG}"' in start
        assert client.get(f"/s/{SLUG}/products/not-an-id").status_code == 404


def test_the_cart_keeps_ids_and_quantities_only_and_is_priced_again_on_every_view(site: Site) -> None:
    first, second = _two_sellers(site)
    with httpx.Client(base_url=site.base_url) as client:
        _add(client, first, 2)
        _add(client, second)
        cookie = client.cookies.get("mk_cart") or ""
        assert re.fullmatch(r"[0-9a-f-]{36}:[0-9a-f-]{36}:2\|[0-9a-f-]{36}:[0-9a-f-]{36}:1", cookie), cookie
        cart = client.get(f"/s/{SLUG}/cart").text
        for product in (first, second):
            assert product["seller_name"] in cart and product["name"] in cart
        variant = next(v for v in first["variants"] if v["stock"] > 10)
        token = _field(cart, "form_token")
        client.post(f"/s/{SLUG}/cart", data={"form_token": token, "action": "update",
                                             f"quantity.{variant['id']}": "3"})
        assert 'value="3"' in client.get(f"/s/{SLUG}/cart").text
        client.post(f"/s/{SLUG}/cart", data={"form_token": token, "remove": variant["id"]})
        assert first["name"] not in client.get(f"/s/{SLUG}/cart").text.split("<main", 1)[1]
        # A cookie edited by hand carries no price: a bogus line is dropped, never priced.
        _set_cart(client, f"{first['id']}:{second['variants'][0]['id']}:1|junk")
        assert "no longer for sale" in client.get(f"/s/{SLUG}/cart").text


def _check_rendered(page: Any, site: Site, html: str, name: str) -> None:
    """A page an HTTP test got, shown in the browser (on the site's origin, so its assets load) and checked."""
    page.goto(site.url(f"/s/{SLUG}"))
    page.set_content(html, wait_until="load")
    accessible(page)
    shot(page, name)


def test_the_same_checkout_form_sent_twice_makes_one_order(page: Any, site: Site) -> None:
    first, second = _two_sellers(site)
    with httpx.Client(base_url=site.base_url) as client:
        _add(client, first)
        _add(client, second)
        form = client.get(f"/s/{SLUG}/checkout").text
        data = {**BUYER, "form_token": _field(form, "form_token"), "idempotency_key": _field(form, "idempotency_key")}
        cookies = dict(client.cookies)
    with _api(site) as api:
        before = api.get("/v1/orders", params={"limit": 200}).json()["items"]
    # A double click: both requests leave with the same cookies and the same form.
    with httpx.Client(base_url=site.base_url, cookies=cookies) as one, \
            httpx.Client(base_url=site.base_url, cookies=cookies) as two:
        with ThreadPoolExecutor(2) as pool:  # both at once, like a double click
            sent = [pool.submit(client.post, f"/s/{SLUG}/checkout", data=data) for client in (one, two)]
            first_answer, second_answer = (future.result() for future in sent)
        third_answer = one.post(f"/s/{SLUG}/checkout", data=data)  # and the same form sent again later
        order_id = _order_id(one, first_answer)
        assert _order_id(two, second_answer) == _order_id(one, third_answer) == order_id
        emptied = [h for h in third_answer.headers.get_list("set-cookie") if h.startswith("mk_cart=")]
        assert emptied and "max-age=0" in emptied[0].lower()  # the cart is emptied once the order is placed
    with _api(site) as api:
        after = api.get("/v1/orders", params={"limit": 200}).json()["items"]
    assert [o["id"] for o in after if o["id"] not in {b["id"] for b in before}] == [order_id]  # one order made
    assert third_answer.status_code == 200 and "sent to your email" in third_answer.text  # the replay's page
    _check_rendered(page, site, third_answer.text, "storefront-order-replayed")


def test_checkout_errors_show_beside_their_fields_and_order_nothing(page: Any, site: Site) -> None:
    first, _ = _two_sellers(site)
    with httpx.Client(base_url=site.base_url) as client:
        _add(client, first)
        form = client.get(f"/s/{SLUG}/checkout").text
        with _api(site) as api:
            before = api.get("/v1/orders", params={"limit": 1}).json()["items"]
        bad = client.post(f"/s/{SLUG}/checkout", data={
            **BUYER, "email": "not-an-email", "city": "", "form_token": _field(form, "form_token"),
            "idempotency_key": _field(form, "idempotency_key")})
        assert bad.status_code == 422
        assert 'id="f-email-error"' in bad.text and 'id="f-city-error"' in bad.text
        assert 'aria-invalid="true"' in bad.text and 'value="Ada Buyer"' in bad.text  # what was typed stays
        _check_rendered(page, site, bad.text, "storefront-checkout-errors")
        # Past the stock: the API's refusal is shown, the cart kept.
        variant = next(v for v in first["variants"] if v["stock"] > 10)
        _set_cart(client, f"{first['id']}:{variant['id']}:1000")
        short = client.post(f"/s/{SLUG}/checkout", data={**BUYER, "form_token": _field(bad.text, "form_token"),
                                                         "idempotency_key": _field(bad.text, "idempotency_key")})
        assert short.status_code == 409 and 'role="alert"' in short.text
        assert client.cookies.get("mk_cart")
        # A form from elsewhere (no matching token) orders nothing either.
        assert client.post(f"/s/{SLUG}/checkout", data={**BUYER, "form_token": "forged"}).status_code == 400
        with _api(site) as api:
            assert api.get("/v1/orders", params={"limit": 1}).json()["items"] == before


def test_an_order_placed_after_a_referral_link_is_attributed_and_earns_commission(site: Site) -> None:
    with httpx.Client(base_url=site.base_url) as owner:
        session = owner.post("/v1/sessions", json={"email": site.affiliate_email, "password": site.demo_password})
        assert session.status_code in (200, 201), session.text
        csrf = {"X-CSRF-Token": session.json()["csrf_token"]}
        settings = owner.get(f"/v1/storefronts/{SLUG}/settings").json()
        link = owner.post("/v1/referral-links", headers=csrf, json={"storefront_id": settings["id"]})
        assert link.status_code == 201, link.text
        affiliate_id = settings["affiliate_id"]
    first, second = _two_sellers(site)
    with httpx.Client(base_url=site.base_url, headers={"User-Agent": BROWSER_UA}) as buyer:
        clicked = buyer.get(f"/r/{link.json()['code']}")
        target = httpx.URL(clicked.headers["location"])  # on the configured public address: follow it here
        assert clicked.status_code == 302 and target.path == f"/s/{SLUG}" and target.params.get("mk_ref")
        assert buyer.cookies.get("mk_ref") == target.params["mk_ref"]
        assert buyer.get(target.raw_path.decode()).status_code == 200
        _add(buyer, first)
        _add(buyer, second)
        form = buyer.get(f"/s/{SLUG}/checkout").text
        placed = buyer.post(f"/s/{SLUG}/checkout", data={
            **BUYER, "email": "referred.buyer@example.com", "form_token": _field(form, "form_token"),
            "idempotency_key": _field(form, "idempotency_key")})
        order_id = _order_id(buyer, placed)
    with _api(site) as api:
        order = api.get(f"/v1/orders/{order_id}").json()
        assert (order["affiliate_id"], order["attribution_source"]) == (affiliate_id, "storefront")
        commissions = api.get("/v1/commissions", params={"limit": 200}).json()["items"]
    earned = [c for c in commissions if c["order_id"] == order_id and c["affiliate_id"] == affiliate_id]
    assert earned and all(c["amount"]["amount"] > 0 for c in earned)


def test_a_market_makers_colour_and_logo_brand_its_storefront_pages(site: Site) -> None:
    slug = "outdoor-alliance-demo"
    with httpx.Client(base_url=site.base_url) as owner:
        session = owner.post("/v1/sessions", json={"email": "outdoor.alliance+demo@example.com",
                                                   "password": site.demo_password})
        csrf = {"X-CSRF-Token": session.json()["csrf_token"]}
        too_light = owner.patch(f"/v1/storefronts/{slug}", headers=csrf, json={"brand_color": "#9fd3a0"})
        assert too_light.status_code == 422 and "contrast" in too_light.text
        assert owner.patch(f"/v1/storefronts/{slug}", headers=csrf, json={
            "brand_color": "#2d5a27", "logo_url": "https://alliance.example/logo.png"}).status_code == 200
        page = httpx.get(site.url(f"/s/{slug}")).text
        assert "--brand: #2d5a27; --brand-ink: #ffffff;" in page
        assert '<img src="https://alliance.example/logo.png" alt="Outdoor Alliance' in page
        directory = httpx.get(site.url("/v1/storefront-directory")).json()["items"]
        assert any(s["slug"] == slug and s["brand_color"] == "#2d5a27" for s in directory)
        # The logo is left out again: the browser tests load nothing from outside the application.
        assert owner.patch(f"/v1/storefronts/{slug}", headers=csrf, json={"logo_url": None}).status_code == 200


# --- in a real browser ----------------------------------------------------------------------------


def _fill_checkout(page: Any, email: str) -> None:
    for label, value in (("Email", email), ("Full name", BUYER["name"]), ("Address", BUYER["line1"]),
                         ("City", BUYER["city"]), ("Postal code", BUYER["postal_code"]),
                         ("Country code", BUYER["country"])):
        page.get_by_label(label, exact=True).fill(value)


def test_a_buyer_orders_across_two_sellers_and_opens_the_order_page(page: Any, site: Site) -> None:
    first, second = _two_sellers(site)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(site.url(f"/s/{SLUG}"))
    accessible(page)
    shot(page, "storefront-listing")
    for product in (first, second):
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
        page.get_by_role("link", name=product["name"], exact=True).click()
        accessible(page)
        page.locator("form.add-form button").first.click()
    assert page.url.endswith(f"/s/{SLUG}/cart")
    assert page.get_by_role("heading", name=first["seller_name"]).is_visible()
    assert page.get_by_role("heading", name=second["seller_name"]).is_visible()
    accessible(page)
    shot(page, "storefront-cart")
    page.get_by_role("link", name="Check out").click()
    _fill_checkout(page, "two.sellers@example.com")
    accessible(page)
    shot(page, "storefront-checkout")
    with page.expect_navigation():
        page.get_by_role("button", name="Place order").click()
    main = page.get_by_role("main").inner_text()
    assert "Reference" in main and "bank transfer" in main
    assert first["seller_name"] in main and second["seller_name"] in main
    accessible(page)
    shot(page, "storefront-order")
    page.reload()  # the order page is an address: it reads the order again
    assert "Reference" in page.get_by_role("main").inner_text()
    assert requested and all(url.startswith(site.base_url) for url in requested), requested


def _tab_to(page: Any, selector: str, limit: int = 60) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_a_keyboard_only_buyer_checks_out_with_tab_and_enter(page: Any, site: Site) -> None:
    first, _ = _two_sellers(site)
    page.goto(site.url(f"/s/{SLUG}"))
    _tab_to(page, f'a[href="/s/{SLUG}/products/{first["id"]}"]')
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/products/{first['id']}")
    _tab_to(page, "form.add-form button")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/s/{SLUG}/cart")
    _tab_to(page, f'a[href="/s/{SLUG}/checkout"]')
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/s/{SLUG}/checkout")
    _tab_to(page, "#f-email")
    for name, value in (("email", "keyboard.buyer@example.com"), ("name", BUYER["name"]), ("line1", BUYER["line1"]),
                        ("city", BUYER["city"]), ("postal_code", BUYER["postal_code"]),
                        ("country", BUYER["country"])):
        _tab_to(page, f"#f-{name}")
        page.keyboard.type(value)
    _tab_to(page, "button.place-order")
    accessible(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Reference" in page.get_by_role("main").inner_text()


def test_a_buyer_orders_on_a_phone_sized_screen(phone_page: Any, site: Site) -> None:
    page = phone_page
    first, _ = _two_sellers(site)
    page.goto(site.url(f"/s/{SLUG}/products/{first['id']}"))
    accessible(page)
    shot(page, "storefront-phone-product")
    page.locator("form.add-form button").first.tap()
    page.get_by_role("link", name="Check out").tap()
    _fill_checkout(page, "phone.buyer@example.com")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways scroll
    shot(page, "storefront-phone-checkout")
    with page.expect_navigation():
        page.get_by_role("button", name="Place order").tap()
    assert "Reference" in page.get_by_role("main").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    accessible(page)


def test_on_stripe_the_confirmation_shows_the_payment_intent_and_loads_no_stripe_script() -> None:
    from web.pages import templates

    order = {"id": "01a2063a-5e0d-7b2a-901b-751061b9f240", "status": "awaiting_payment",
             "total": {"amount": 7499, "currency": "USD"}, "lines": [],
             "payment": {"rail": "stripe", "status": "awaiting_payment", "payment_intent_id": "pi_123",
                         "client_secret": "pi_123_secret_abc",
                         "instructions": "Confirm the PaymentIntent with Stripe.js using client_secret."}}
    html = templates.get_template("storefront/_payment.html").render(order=order)
    assert "pi_123" in html and "USD 74.99" in html and "Stripe" in html
    assert "<script" not in html and "bank transfer" not in html


def test_the_buyer_withdraws_a_consent_on_the_order_page(site: Site) -> None:
    first, _ = _two_sellers(site)
    with httpx.Client(base_url=site.base_url) as client:
        _add(client, first)
        form = client.get(f"/s/{SLUG}/checkout").text
        assert 'name="consent.marketing"' in form  # the purposes the platform asks about
        placed = client.post(f"/s/{SLUG}/checkout", data={
            **BUYER, "consent.order_updates": "yes", "consent.marketing": "yes",
            "form_token": _field(form, "form_token"), "idempotency_key": _field(form, "idempotency_key")})
        assert placed.status_code == 303
        order_url = placed.headers["location"]
        token = order_url.rsplit("/", 1)[1]
        assert httpx.get(site.url(f"/v1/order-status/{token}")).json()["consents"]["marketing"] is True
        page = client.get(order_url)
        assert 'value="marketing"' in page.text and 'value="partner_contact"' not in page.text
        withdrawn = client.post(f"{order_url}/consents", data={"form_token": _field(page.text, "form_token"),
                                                               "withdraw": "marketing"})
        assert withdrawn.status_code == 303 and withdrawn.headers["location"] == order_url
    consents = httpx.get(site.url(f"/v1/order-status/{token}")).json()["consents"]
    assert (consents["marketing"], consents["order_updates"]) == (False, True)


def test_a_seller_with_shipping_rates_has_the_buyer_choose_one_before_the_order_is_placed(
    page: Any, site: Site
) -> None:
    seller, me = session_client(site, site.seller_email, site.demo_password)
    product = next(p for p in _products(site)
                   if p["seller_id"] == me["organization_id"] and any(v["stock"] > 10 for v in p["variants"]))
    profile = seller.post("/v1/shipping-profiles", json={
        "name": "Domestic", "currency": "USD", "zones": ["US"],
        "rates": [{"name": "Standard", "kind": "flat", "amount": 500},
                  {"name": "Express", "kind": "flat", "amount": 1500}]})
    assert profile.status_code == 201, profile.text
    express = next(r["id"] for r in profile.json()["rates"] if r["name"] == "Express")
    try:
        with httpx.Client(base_url=site.base_url) as client:
            _add(client, product)
            form = client.get(f"/s/{SLUG}/checkout").text
            data = {**BUYER, "email": "ships@example.com", "form_token": _field(form, "form_token"),
                    "idempotency_key": _field(form, "idempotency_key")}
            asked = client.post(f"/s/{SLUG}/checkout", data=data)
            assert asked.status_code == 200 and "Choose how each seller ships" in asked.text
            assert "Standard: USD 5.00" in asked.text and "Express: USD 15.00" in asked.text
            assert _field(asked.text, "idempotency_key") == data["idempotency_key"]  # still the same attempt
            _check_rendered(page, site, asked.text, "storefront-checkout-shipping")
            data["form_token"] = _field(asked.text, "form_token")
            data[f"shipping.{me['organization_id']}"] = express
            order_id = _order_id(client, client.post(f"/s/{SLUG}/checkout", data=data))
        with _api(site) as api:
            order = api.get(f"/v1/orders/{order_id}").json()
        assert order["shipping"]["amount"] == 1500
        assert [part["shipping_method"] for part in order["sub_orders"]] == ["Express"]
    finally:
        seller.post(f"/v1/shipping-profiles/{profile.json()['id']}/archive")
        seller.close()
