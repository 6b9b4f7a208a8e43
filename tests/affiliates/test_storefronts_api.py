"""Storefronts: listings from joined programs only, the public cached views (with invalidation
when listings or the catalog change), and owner-only settings."""

from __future__ import annotations

from tests.affiliates.conftest import Market, ok


def test_public_storefront_lists_products_with_variants_in_pages(market: Market) -> None:
    seller = market.seller()
    program_id = market.program(seller, {"default": {"bps": 500}})
    items = [market.product(seller, 1000 + i, 2000 + i, name=f"P{i}")[0] for i in range(3)]
    affiliate = market.affiliate("Guild")
    market.join(affiliate, program_id)
    slug = market.storefront(affiliate, *items)

    front = ok(market.client.get(f"/v1/storefronts/{slug}"))
    seller_name = ok(market.client.get(f"/v1/storefronts/{slug}/products"))["items"][0]["seller_name"]
    assert front == {"slug": slug, "name": "Shop", "description": "", "currency": "USD", "affiliate_name": "Guild",
                     "product_count": 3, "logo_url": None, "brand_color": None,
                     "sellers": [{"id": seller.id, "name": seller_name}]}
    first = ok(market.client.get(f"/v1/storefronts/{slug}/products?limit=2"))
    second = ok(market.client.get(f"/v1/storefronts/{slug}/products?limit=2&cursor={first['next_cursor']}"))
    assert [p["name"] for p in first["items"] + second["items"]] == ["P0", "P1", "P2"]
    assert second["next_cursor"] is None
    assert [v["price"]["amount"] for v in first["items"][0]["variants"]] == [1000, 2000]
    one = ok(market.client.get(f"/v1/storefronts/{slug}/products/{items[1].product_id}"))
    assert one["name"] == "P1"
    assert "splits" not in front


def test_listing_changes_and_catalog_changes_show_on_the_public_storefront(market: Market) -> None:
    seller = market.seller()
    program_id = market.program(seller, {"default": {"bps": 500}})
    first, second = market.product(seller, 1000)[0], market.product(seller, 3000)[0]
    affiliate = market.affiliate()
    market.join(affiliate, program_id)
    slug = market.storefront(affiliate, first)
    assert len(ok(market.client.get(f"/v1/storefronts/{slug}/products"))["items"]) == 1  # now cached
    ok(market.client.post(f"/v1/storefronts/{slug}/listings", headers=affiliate.headers,
                          json={"product_id": second.product_id}), 201)
    assert len(ok(market.client.get(f"/v1/storefronts/{slug}/products"))["items"]) == 2
    ok(market.client.patch(f"/v1/products/{first.product_id}/variants/{first.variant_id}", headers=seller.headers,
                           json={"price": {"amount": 1234, "currency": "USD"}}))
    prices = [p["variants"][0]["price"]["amount"] for p in ok(market.client.get(f"/v1/storefronts/{slug}/products"))[
        "items"]]
    assert prices == [1234, 3000]
    ok(market.client.delete(f"/v1/storefronts/{slug}/listings/{first.product_id}", headers=affiliate.headers), 204)
    assert [p["id"] for p in ok(market.client.get(f"/v1/storefronts/{slug}/products"))["items"]] == [second.product_id]
    ok(market.client.post(f"/v1/products/{second.product_id}/unpublish", headers=seller.headers))
    assert ok(market.client.get(f"/v1/storefronts/{slug}/products"))["items"] == []
    missing = market.client.delete(f"/v1/storefronts/{slug}/listings/{first.product_id}", headers=affiliate.headers)
    assert missing.status_code == 404


def test_listing_is_refused_outside_joined_programs_and_in_another_currency(market: Market) -> None:
    joined, stranger = market.seller("Joined"), market.seller("Stranger")
    program_id = market.program(joined, {"default": {"bps": 500}})
    market.program(stranger, {"default": {"bps": 500}})
    (euro,) = market.product(joined, 1000, currency="EUR")
    (foreign,) = market.product(stranger, 1000)
    affiliate = market.affiliate()
    market.join(affiliate, program_id)
    slug = market.storefront(affiliate)
    not_member = market.client.post(f"/v1/storefronts/{slug}/listings", headers=affiliate.headers,
                                    json={"product_id": foreign.product_id})
    assert not_member.status_code == 409 and "join it" in not_member.json()["detail"]
    wrong_currency = market.client.post(f"/v1/storefronts/{slug}/listings", headers=affiliate.headers,
                                        json={"product_id": euro.product_id})
    assert wrong_currency.status_code == 409 and "EUR" in wrong_currency.json()["detail"]


def test_storefront_settings_are_the_owners_alone(market: Market) -> None:
    seller = market.seller()
    (item,) = market.product(seller, 1000)
    program_id = market.program(seller, {"default": {"bps": 500}})
    owner, other, partner = market.affiliate("Owner"), market.affiliate("Other"), market.affiliate("Partner")
    market.join(owner, program_id)
    market.join(other, program_id)
    slug = market.storefront(owner, item, splits=[(owner, 3), (partner, 1)])
    settings = ok(market.client.get(f"/v1/storefronts/{slug}/settings", headers=owner.headers))
    assert settings["splits"] == [{"affiliate_id": owner.id, "weight": 3}, {"affiliate_id": partner.id, "weight": 1}]
    for method, path, body in (
        ("GET", f"/v1/storefronts/{slug}/settings", None), ("PATCH", f"/v1/storefronts/{slug}", {"name": "x"}),
        ("GET", f"/v1/storefronts/{slug}/listings", None),
        ("POST", f"/v1/storefronts/{slug}/listings", {"product_id": item.product_id}),
        ("DELETE", f"/v1/storefronts/{slug}/listings/{item.product_id}", None),
    ):
        assert market.client.request(method, path, headers=other.headers, json=body).status_code == 404, path
    assert [s["slug"] for s in ok(market.client.get("/v1/storefronts", headers=other.headers))["items"]] == []
    assert ok(market.client.get(f"/v1/storefronts/{slug}/settings", headers=market.operator))["slug"] == slug
    taken = market.client.post("/v1/storefronts", headers=other.headers,
                               json={"slug": slug, "name": "copy", "currency": "USD"})
    assert taken.status_code == 409


def test_storefront_of_a_rejected_affiliate_goes_offline(market: Market) -> None:
    affiliate = market.affiliate()
    slug = market.storefront(affiliate)
    ok(market.client.get(f"/v1/storefronts/{slug}"))
    ok(market.client.post(f"/v1/affiliates/{affiliate.id}/reject", headers=market.operator, json={"reason": "fraud"}))
    assert market.client.get(f"/v1/storefronts/{slug}").status_code == 404
    assert market.client.get("/v1/storefronts/no-such-shop").status_code == 404
