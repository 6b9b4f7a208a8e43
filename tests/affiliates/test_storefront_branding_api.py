"""Storefront branding, the public directory and search within a storefront (issue 14): what the
storefront pages read, through the public API."""

from __future__ import annotations

from tests.affiliates.conftest import Market, ok


def test_owner_sets_logo_and_a_colour_white_text_reads_on_and_buyers_see_them(market: Market) -> None:
    seller = market.seller()
    program_id = market.program(seller, {"default": {"bps": 500}})
    (item,) = market.product(seller, 1000)
    affiliate, other = market.affiliate("Guild"), market.affiliate()
    market.join(affiliate, program_id)
    slug = market.storefront(affiliate, item)
    ok(market.client.get(f"/v1/storefronts/{slug}"))  # cached before the change

    changed = ok(market.client.patch(f"/v1/storefronts/{slug}", headers=affiliate.headers, json={
        "name": "Makers", "logo_url": "https://makers.example/logo.png", "brand_color": "#1A4D2E"}))
    assert (changed["logo_url"], changed["brand_color"]) == ("https://makers.example/logo.png", "#1a4d2e")
    front = ok(market.client.get(f"/v1/storefronts/{slug}"))
    assert (front["name"], front["logo_url"], front["brand_color"]) == (
        "Makers", "https://makers.example/logo.png", "#1a4d2e")

    for bad in ({"brand_color": "#ffff00"},  # white on yellow: contrast 1.07
                {"brand_color": "#777777"},  # 4.48, just under AA
                {"brand_color": "red"}, {"brand_color": "#12345"},
                {"logo_url": "http://makers.example/logo.png"}, {"logo_url": "javascript:alert(1)"},
                {"logo_url": "https://x.example/" + "a" * 500}):
        response = market.client.patch(f"/v1/storefronts/{slug}", headers=affiliate.headers, json=bad)
        assert response.status_code == 422, (bad, response.text)
    assert market.client.patch(f"/v1/storefronts/{slug}", headers=other.headers,
                               json={"brand_color": "#000000"}).status_code == 404
    cleared = ok(market.client.patch(f"/v1/storefronts/{slug}", headers=affiliate.headers,
                                     json={"logo_url": None, "brand_color": None}))
    assert (cleared["logo_url"], cleared["brand_color"]) == (None, None)
    assert ok(market.client.get(f"/v1/storefronts/{slug}"))["brand_color"] is None


def test_directory_lists_approved_market_makers_storefronts_in_pages(market: Market) -> None:
    approved = market.affiliate("Open Guild")
    slugs = [market.storefront(approved) for _ in range(3)]
    pending = market.apply("Pending Guild")
    ok(market.client.patch(f"/v1/storefronts/{slugs[0]}", headers=approved.headers,
                           json={"brand_color": "#1d4e89", "description": "Tools"}))
    seen: list[dict[str, object]] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = ok(market.client.get("/v1/storefront-directory", params=params))
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    mine = [s for s in seen if s["slug"] in slugs]
    assert [s["slug"] for s in mine] == slugs
    assert mine[0] == {"slug": slugs[0], "name": "Shop", "description": "Tools", "currency": "USD",
                       "affiliate_name": "Open Guild", "logo_url": None, "brand_color": "#1d4e89"}
    assert all(s["affiliate_name"] != "Pending Guild" for s in seen)
    assert pending.id  # its application is not approved: none of its storefronts can be listed
    assert market.client.get("/v1/storefront-directory", params={"cursor": "nonsense!"}).status_code == 422


def test_storefront_products_search_and_seller_filter_keep_listing_order_and_paging(market: Market) -> None:
    lumen, north = market.seller("Lumen"), market.seller("Northwind")
    affiliate = market.affiliate()
    for seller in (lumen, north):
        market.join(affiliate, market.program(seller, {"default": {"bps": 500}}))
    items = [market.product(lumen, 1000, name="Desk Lamp")[0], market.product(north, 2000, name="Desk Speaker")[0],
             market.product(lumen, 3000, name="Floor Lamp")[0], market.product(north, 4000, name="Headphones")[0]]
    slug = market.storefront(affiliate, *items)
    products = f"/v1/storefronts/{slug}/products"

    def names(**params: object) -> list[str]:
        return [p["name"] for p in ok(market.client.get(products, params=params))["items"]]

    assert names(q="desk") == ["Desk Lamp", "Desk Speaker"]
    assert names(q="lamp", seller_id=lumen.id) == ["Desk Lamp", "Floor Lamp"]
    assert names(seller_id=north.id) == ["Desk Speaker", "Headphones"]
    assert names(q="nothing-like-it") == []
    first = ok(market.client.get(products, params={"q": "lamp", "limit": 1}))
    second = ok(market.client.get(products, params={"q": "lamp", "limit": 1, "cursor": first["next_cursor"]}))
    assert [p["name"] for p in first["items"] + second["items"]] == ["Desk Lamp", "Floor Lamp"]
    assert second["next_cursor"] is None
    front = ok(market.client.get(f"/v1/storefronts/{slug}"))
    assert [s["name"] for s in front["sellers"]] == ["Lumen", "Northwind"]
    assert market.client.get(products, params={"seller_id": "not-a-uuid"}).status_code == 422
