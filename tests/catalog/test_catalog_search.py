"""The public catalog through the HTTP API: what is listed, full-text search, filters, every sort
paged across pages with cursors, and the single-product read."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel.auth import Role
from tests.catalog.conftest import approved_seller, create_product, published_product, variant
from tests.conftest import Backend, bearer, issue_key


def all_pages(client: TestClient, headers: dict[str, str], limit: int = 2, **params: Any) -> list[dict[str, Any]]:
    """Every item, following next_cursor; fails if a page repeats an item."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(50):
        query = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get("/v1/catalog/products", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)), "an item appeared on two pages"
    return items


@pytest.fixture
def shelf(client: TestClient, operator: dict[str, str]) -> dict[str, Any]:
    """Two approved sellers with published products, plus things the catalog must not show."""
    alice_id, alice = approved_seller(client, operator, "Alice Hardware")
    bob_id, bob = approved_seller(client, operator, "Bob Software")
    p: dict[str, dict[str, Any]] = {}

    def put(key: str, headers: dict[str, str], name: str, description: str, variants: list[dict[str, Any]],
            **extra: Any) -> None:
        p[key] = published_product(client, headers, name=name, description=description, variants=variants, **extra)

    put("anvil", alice, "Anvil", "heavy forged steel block", [variant("ANV-1", 12000, stock=2)],
        category="Tools", tags=["metal", "heavy"])
    put("anvil2", alice, "anvil", "a second, lighter anvil", [variant("ANV-2", 12000, stock=0)],
        category="tools", tags=["metal"])
    put("bolt", alice, "Bolt", "steel bolts, box of 100",
        [variant("BOLT-S", 500, stock=100), variant("BOLT-L", 900, stock=0, active=False)],
        category="Fasteners", tags=["metal"])
    put("chisel", alice, "Chisel", "wood chisel with steel edge", [variant("CHI-1", 2500, stock=4)],
        category="Tools", tags=["wood"])
    put("drill", bob, "Drill", "drill planning software", [variant("DRL-B", 1999, name="Basic"),
                                                            variant("DRL-P", 4999, name="Pro")],
        category="Software", tags=["saas"])
    put("emery", bob, "Emery", "emery board simulator", [variant("EME-1", 500, stock=0)],
        category="Software", tags=["saas"])
    put("yen", bob, "File", "file sync for workshops", [variant("FILE-JP", 800, currency="JPY")],
        currency="JPY", category="Software", tags=["saas"])
    draft = create_product(client, alice, name="Draft Gadget", description="steel draft",
                           variants=[variant("DRAFT-1", 100)])
    archived = published_product(client, bob, name="Old Tool", description="steel archived",
                                 variants=[variant("OLD-1", 100)])
    client.post(f"/v1/products/{archived['id']}/archive", headers=bob)
    carol_id, carol = approved_seller(client, operator, "Carol")
    suspended = published_product(client, carol, name="Suspended Steel", description="steel",
                                  variants=[variant("SUS-1", 100)])
    client.post(f"/v1/sellers/{carol_id}/reject", json={"reason": "suspended"}, headers=operator)
    return {"alice_id": alice_id, "bob_id": bob_id, "alice": alice, "bob": bob, "p": p,
            "hidden": [draft["id"], archived["id"], suspended["id"]]}


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def test_catalog_lists_only_published_products_of_approved_sellers(
    client: TestClient, operator: dict[str, str], shelf: dict[str, Any], env: Backend
) -> None:
    affiliate = bearer(issue_key(env, Role.AFFILIATE, uuid.uuid4()))
    listed = all_pages(client, affiliate, limit=50)
    assert set(ids(listed)) == {p["id"] for p in shelf["p"].values()}
    assert not set(ids(listed)) & set(shelf["hidden"])
    bolt = next(item for item in listed if item["id"] == shelf["p"]["bolt"]["id"])
    assert [v["sku"] for v in bolt["variants"]] == ["BOLT-S"]  # inactive levels are not for sale
    assert (bolt["seller_name"], bolt["from_price"], bolt["in_stock"]) == (
        "Alice Hardware", {"amount": 500, "currency": "USD"}, True
    )
    assert client.get("/v1/catalog/products").status_code == 401


def test_every_sort_pages_through_everything_in_order(
    client: TestClient, operator: dict[str, str], shelf: dict[str, Any]
) -> None:
    products = list(shelf["p"].values())
    by_id = sorted(products, key=lambda p: p["id"])
    expected = {
        "newest": [p["id"] for p in reversed(by_id)],
        "price_asc": [p["id"] for p in sorted(products, key=lambda p: (p["from_price"]["amount"], p["id"]))],
        "price_desc": [p["id"] for p in sorted(
            products, key=lambda p: (p["from_price"]["amount"], p["id"]), reverse=True)],
        "name": [p["id"] for p in sorted(products, key=lambda p: (p["name"].lower(), p["id"]))],
    }
    for sort, order in expected.items():
        for limit in (1, 2, 3):
            assert ids(all_pages(client, operator, limit=limit, sort=sort)) == order, (sort, limit)
    # filters and sort together, still across pages
    usd_tools = all_pages(client, operator, limit=1, sort="price_desc", currency="USD", category="TOOLS")
    assert ids(usd_tools) == [p["id"] for p in sorted(
        [shelf["p"]["anvil"], shelf["p"]["anvil2"], shelf["p"]["chisel"]],
        key=lambda p: (p["from_price"]["amount"], p["id"]), reverse=True)]


def test_a_product_added_between_pages_is_neither_repeated_nor_skipped(
    client: TestClient, operator: dict[str, str], shelf: dict[str, Any]
) -> None:
    first = client.get("/v1/catalog/products", params={"sort": "price_asc", "limit": 3}, headers=operator).json()
    published_product(client, shelf["alice"], name="Cheap", description="x", variants=[variant("CHEAP", 1)])
    rest = all_pages(client, operator, limit=3, sort="price_asc", cursor=first["next_cursor"])
    seen = ids(first["items"]) + ids(rest)
    assert len(seen) == len(set(seen)) == len(shelf["p"])  # the cheaper newcomer sorts before the cursor


@pytest.mark.parametrize("q, expected", [
    ("steel", ["anvil", "bolt", "chisel"]),
    ("STEEL chisel", ["chisel"]),
    ("anvil", ["anvil", "anvil2"]),
    ("software", ["drill"]),
    ("nothing-like-this", []),
])
def test_full_text_search_over_name_and_description(
    client: TestClient, operator: dict[str, str], shelf: dict[str, Any], q: str, expected: list[str]
) -> None:
    found = all_pages(client, operator, limit=50, q=q)
    assert sorted(ids(found)) == sorted(shelf["p"][key]["id"] for key in expected)


def test_filters(client: TestClient, operator: dict[str, str], shelf: dict[str, Any]) -> None:
    p = shelf["p"]

    def found(**params: Any) -> set[str]:
        return set(ids(all_pages(client, operator, limit=50, **params)))

    assert found(seller_id=shelf["bob_id"]) == {p["drill"]["id"], p["emery"]["id"], p["yen"]["id"]}
    assert found(category="tools") == {p["anvil"]["id"], p["anvil2"]["id"], p["chisel"]["id"]}
    assert found(tag="METAL") == {p["anvil"]["id"], p["anvil2"]["id"], p["bolt"]["id"]}
    assert found(currency="jpy") == {p["yen"]["id"]}
    # any active variant in range: Drill's Pro level (4999) matches, Bolt's inactive 900 does not
    assert found(currency="USD", min_price=3000, max_price=5000) == {p["drill"]["id"]}
    assert found(currency="USD", min_price=800, max_price=1000) == set()
    assert found(currency="USD", max_price=500) == {p["bolt"]["id"], p["emery"]["id"]}
    assert found(in_stock=False) == {p["anvil2"]["id"], p["emery"]["id"]}
    assert found(in_stock=True, tag="metal") == {p["anvil"]["id"], p["bolt"]["id"]}
    assert found(q="steel", seller_id=shelf["alice_id"], in_stock=True, currency="USD", min_price=1000) == {
        p["anvil"]["id"], p["chisel"]["id"]}


@pytest.mark.parametrize("params", [
    {"min_price": 100},  # minor units of which currency?
    {"currency": "USD", "min_price": 500, "max_price": 100},
    {"currency": "XXX"},
    {"sort": "cheapest"},
    {"cursor": "not-a-cursor"},
    {"limit": 0},
    {"limit": 201},
    {"min_price": -1, "currency": "USD"},
])
def test_bad_catalog_queries_are_422_problems(
    client: TestClient, operator: dict[str, str], params: dict[str, Any]
) -> None:
    response = client.get("/v1/catalog/products", params=params, headers=operator)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_cursor_is_bound_to_its_sort(client: TestClient, operator: dict[str, str], shelf: dict[str, Any]) -> None:
    page = client.get("/v1/catalog/products", params={"sort": "name", "limit": 1}, headers=operator).json()
    response = client.get("/v1/catalog/products", params={"sort": "price_asc", "cursor": page["next_cursor"]},
                          headers=operator)
    assert response.status_code == 422 and "sort=name" in response.json()["detail"]


def test_catalog_product_by_id_is_published_only(
    client: TestClient, operator: dict[str, str], shelf: dict[str, Any], env: Backend
) -> None:
    affiliate = bearer(issue_key(env, Role.AFFILIATE, uuid.uuid4()))
    drill = shelf["p"]["drill"]
    body = client.get(f"/v1/catalog/products/{drill['id']}", headers=affiliate).json()
    assert (body["name"], body["seller_name"], [v["name"] for v in body["variants"]]) == (
        "Drill", "Bob Software", ["Basic", "Pro"]
    )
    for hidden in shelf["hidden"]:
        assert client.get(f"/v1/catalog/products/{hidden}", headers=affiliate).status_code == 404
    client.post(f"/v1/products/{drill['id']}/unpublish", headers=shelf["bob"])
    assert client.get(f"/v1/catalog/products/{drill['id']}", headers=affiliate).status_code == 404
