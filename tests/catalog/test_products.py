"""Products with levels/variants through the HTTP API: create, validate, edit, publish, archive,
stock, and who may see and change what."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel.auth import Role
from tests.catalog.conftest import (
    apply_seller,
    approved_seller,
    create_product,
    product_body,
    published_product,
    variant,
)
from tests.conftest import Backend, bearer, issue_key

ZERO_ID = "00000000-0000-0000-0000-000000000000"


def problem(response: Any, status: int, type_suffix: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if type_suffix:
        assert body["type"].endswith("/" + type_suffix), body
    return body


def test_seller_creates_a_draft_product_with_levels(client: TestClient, operator: dict[str, str]) -> None:
    seller_id, headers = approved_seller(client, operator)
    body = product_body("Invoicer", currency="jpy", tags=["SaaS", "saas", " Billing "], variants=[
        variant("INV-BASIC", 1500, name="Basic", currency="JPY", stock=5),
        variant("INV-PRO", 4500, name="Pro", currency="JPY", stock=0),
        variant("INV-ENT", 9000, name="Enterprise", currency="JPY", active=False),
    ])
    response = client.post("/v1/products", json=body, headers=headers)
    assert response.status_code == 201, response.text
    product = response.json()
    assert (product["seller_id"], product["status"], product["version"], product["currency"]) == (
        seller_id, "draft", 1, "JPY"
    )
    assert product["tags"] == ["saas", "billing"]
    assert [(v["sku"], v["name"], v["position"], v["price"], v["stock"], v["active"]) for v in product["variants"]] == [
        ("INV-BASIC", "Basic", 0, {"amount": 1500, "currency": "JPY"}, 5, True),
        ("INV-PRO", "Pro", 1, {"amount": 4500, "currency": "JPY"}, 0, True),
        ("INV-ENT", "Enterprise", 2, {"amount": 9000, "currency": "JPY"}, 10, False),
    ]
    assert product["from_price"] == {"amount": 1500, "currency": "JPY"}
    assert client.get(f"/v1/products/{product['id']}", headers=headers).json() == product


@pytest.mark.parametrize("change, why", [
    ({"variants": []}, "at least one variant"),
    ({"variants": [variant("A", 0)]}, "zero price"),
    ({"variants": [variant("A", -5)]}, "negative price"),
    ({"variants": [variant("A", 100, currency="XXX")]}, "unknown currency"),
    ({"currency": "KWD"}, "three-decimal currency"),
    ({"variants": [variant("A", 100, stock=-1)]}, "negative stock"),
    ({"variants": [variant("has space", 100)]}, "bad SKU"),
    ({"variants": [{"sku": "A", "name": "A", "price": {"amount": 1.5, "currency": "USD"}}]}, "fractional amount"),
    ({"name": ""}, "empty name"),
    ({"color": "red"}, "unknown field"),
])
def test_invalid_product_is_a_422_problem(
    client: TestClient, operator: dict[str, str], change: dict[str, Any], why: str
) -> None:
    _, headers = approved_seller(client, operator)
    problem(client.post("/v1/products", json=product_body() | change, headers=headers), 422)


def test_one_bad_variant_creates_nothing(client: TestClient, operator: dict[str, str]) -> None:
    _, headers = approved_seller(client, operator)
    wrong_currency = product_body(variants=[variant("OK-1", 100), variant("EUR-1", 100, currency="EUR")])
    body = problem(client.post("/v1/products", json=wrong_currency, headers=headers), 422, "invalid-product")
    assert "EUR" in body["detail"]
    twice = product_body(variants=[variant("DUP", 100), variant("DUP", 200)])
    problem(client.post("/v1/products", json=twice, headers=headers), 422, "invalid-product")
    assert client.get("/v1/products", headers=headers).json()["items"] == []
    # the SKUs of the refused products are still free
    create_product(client, headers, variants=[variant("OK-1", 100), variant("DUP", 100)])


def test_sku_is_unique_per_seller_not_across_sellers(client: TestClient, operator: dict[str, str]) -> None:
    _, alice = approved_seller(client, operator, "Alice")
    _, bob = approved_seller(client, operator, "Bob")
    first = create_product(client, alice, variants=[variant("TSHIRT-M", 1500)])
    body = problem(
        client.post("/v1/products", json=product_body(variants=[variant("NEW", 1), variant("TSHIRT-M", 1)]),
                    headers=alice),
        409, "sku-taken",
    )
    assert "TSHIRT-M" in body["detail"] and body["skus"] == ["TSHIRT-M"]
    problem(client.post(f"/v1/products/{first['id']}/variants", json=variant("TSHIRT-M", 10), headers=alice),
            409, "sku-taken")
    create_product(client, bob, variants=[variant("TSHIRT-M", 1500)])
    assert len(client.get("/v1/products", headers=alice).json()["items"]) == 1


def test_every_change_bumps_the_version(client: TestClient, operator: dict[str, str]) -> None:
    _, headers = approved_seller(client, operator)
    product = create_product(client, headers)
    pid, basic, pro = product["id"], product["variants"][0]["id"], product["variants"][1]["id"]
    steps = [
        client.patch(f"/v1/products/{pid}", json={"name": "Widget Max", "tags": ["X"]}, headers=headers),
        client.post(f"/v1/products/{pid}/variants", json=variant("W-ENT", 9900, name="Enterprise"), headers=headers),
        client.patch(f"/v1/products/{pid}/variants/{pro}", json={"price": {"amount": 3999, "currency": "USD"}},
                     headers=headers),
        client.post(f"/v1/products/{pid}/variants/{basic}/stock", json={"delta": 5}, headers=headers),
        client.post(f"/v1/products/{pid}/publish", headers=headers),
        client.post(f"/v1/products/{pid}/unpublish", headers=headers),
        client.post(f"/v1/products/{pid}/archive", headers=headers),
    ]
    assert [r.status_code for r in steps] == [200, 201, 200, 200, 200, 200, 200]
    versions = [r.json().get("version", r.json().get("product_version")) for r in steps]
    assert versions == [2, 3, 4, 5, 6, 7, 8]
    final = client.get(f"/v1/products/{pid}", headers=headers).json()
    assert (final["name"], final["tags"], final["status"], final["version"]) == ("Widget Max", ["x"], "archived", 8)
    assert [v["name"] for v in final["variants"]] == ["Basic", "Pro", "Enterprise"]


def test_variant_edits_keep_the_products_currency_and_from_price(client: TestClient, operator: dict[str, str]) -> None:
    _, headers = approved_seller(client, operator)
    product = create_product(client, headers)
    pid, basic = product["id"], product["variants"][0]["id"]
    problem(client.patch(f"/v1/products/{pid}/variants/{basic}", json={"price": {"amount": 1, "currency": "EUR"}},
                         headers=headers), 422, "invalid-product")
    problem(client.patch(f"/v1/products/{pid}/variants/{basic}", json={"price": {"amount": 0, "currency": "USD"}},
                         headers=headers), 422)
    problem(client.post(f"/v1/products/{pid}/variants", json=variant("EURO", 5, currency="EUR"), headers=headers),
            422, "invalid-product")
    client.patch(f"/v1/products/{pid}/variants/{basic}", json={"active": False}, headers=headers)
    assert client.get(f"/v1/products/{pid}", headers=headers).json()["from_price"]["amount"] == 4999
    problem(client.patch(f"/v1/products/{pid}/variants/{ZERO_ID}", json={"name": "x"}, headers=headers),
            404, "variant-not-found")


def test_publish_rules(client: TestClient, operator: dict[str, str]) -> None:
    _, headers = approved_seller(client, operator)
    lonely = create_product(client, headers, variants=[variant("ONLY", 100, active=False)])
    problem(client.post(f"/v1/products/{lonely['id']}/publish", headers=headers), 409, "product-not-publishable")
    product = published_product(client, headers, variants=[variant("ONE", 100)])
    assert product["status"] == "published"
    again = client.post(f"/v1/products/{product['id']}/publish", headers=headers)
    assert again.status_code == 200 and again.json()["version"] == product["version"]  # no change, no bump
    only = product["variants"][0]["id"]
    problem(client.patch(f"/v1/products/{product['id']}/variants/{only}", json={"active": False}, headers=headers),
            409, "product-not-publishable")
    archived = client.post(f"/v1/products/{product['id']}/archive", headers=headers).json()
    assert archived["status"] == "archived"
    for response in (
        client.post(f"/v1/products/{product['id']}/publish", headers=headers),
        client.post(f"/v1/products/{product['id']}/unpublish", headers=headers),
        client.patch(f"/v1/products/{product['id']}", json={"name": "back"}, headers=headers),
        client.post(f"/v1/products/{product['id']}/variants", json=variant("NEW", 5), headers=headers),
        client.post(f"/v1/products/{product['id']}/variants/{only}/stock", json={"set": 3}, headers=headers),
    ):
        problem(response, 409, "product-archived")
    # archived is kept (orders refer to it) and still readable by its owner
    assert client.get(f"/v1/products/{product['id']}", headers=headers).json()["status"] == "archived"
    assert client.get("/v1/products", params={"status": "archived"}, headers=headers).json()["items"][0]["id"] == \
        product["id"]


def test_stock_changes_never_go_negative(client: TestClient, operator: dict[str, str]) -> None:
    _, headers = approved_seller(client, operator)
    product = create_product(client, headers, variants=[variant("STK", 100, stock=3)])
    url = f"/v1/products/{product['id']}/variants/{product['variants'][0]['id']}/stock"
    assert client.post(url, json={"delta": 4}, headers=headers).json()["stock"] == 7
    assert client.post(url, json={"delta": -7}, headers=headers).json()["stock"] == 0
    body = problem(client.post(url, json={"delta": -1}, headers=headers), 409, "insufficient-stock")
    assert body["stock"] == 0
    assert client.post(url, json={"set": 12}, headers=headers).json()["stock"] == 12
    for bad in ({"set": -1}, {"delta": 1, "set": 2}, {}, {"delta": "many"}):
        problem(client.post(url, json=bad, headers=headers), 422)
    assert client.get(f"/v1/products/{product['id']}", headers=headers).json()["variants"][0]["stock"] == 12


def test_another_sellers_product_is_a_404_everywhere(client: TestClient, operator: dict[str, str]) -> None:
    _, alice = approved_seller(client, operator, "Alice")
    _, bob = approved_seller(client, operator, "Bob")
    product = create_product(client, alice)
    pid, vid = product["id"], product["variants"][0]["id"]
    attempts = [
        client.get(f"/v1/products/{pid}", headers=bob),
        client.patch(f"/v1/products/{pid}", json={"name": "mine"}, headers=bob),
        client.post(f"/v1/products/{pid}/variants", json=variant("BOB-1", 5), headers=bob),
        client.patch(f"/v1/products/{pid}/variants/{vid}", json={"name": "x"}, headers=bob),
        client.post(f"/v1/products/{pid}/variants/{vid}/stock", json={"delta": -1}, headers=bob),
        client.post(f"/v1/products/{pid}/publish", headers=bob),
        client.post(f"/v1/products/{pid}/unpublish", headers=bob),
        client.post(f"/v1/products/{pid}/archive", headers=bob),
    ]
    for response in attempts:
        problem(response, 404, "product-not-found")
    assert client.get("/v1/products", headers=bob).json()["items"] == []
    assert client.get("/v1/products", params={"seller_id": product["seller_id"]}, headers=bob).json()["items"] == []
    unchanged = client.get(f"/v1/products/{pid}", headers=alice).json()
    assert unchanged["version"] == 1 and unchanged["status"] == "draft"


def test_operator_sees_every_product_and_filters_by_seller(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    alice_id, alice = approved_seller(client, operator, "Alice")
    bob_id, bob = approved_seller(client, operator, "Bob")
    a1, b1, a2 = create_product(client, alice), create_product(client, bob), create_product(client, alice)
    everyone = client.get("/v1/products", headers=operator).json()["items"]
    assert [p["id"] for p in everyone] == [a1["id"], b1["id"], a2["id"]]
    only_alice = client.get("/v1/products", params={"seller_id": alice_id}, headers=operator).json()["items"]
    assert [p["id"] for p in only_alice] == [a1["id"], a2["id"]]
    assert client.get(f"/v1/products/{b1['id']}", headers=operator).json()["seller_id"] == bob_id
    # an operator may moderate: take a product out of the catalog
    assert client.post(f"/v1/products/{b1['id']}/archive", headers=operator).json()["status"] == "archived"
    affiliate = bearer(issue_key(env, Role.AFFILIATE, uuid.UUID(alice_id)))
    assert client.get("/v1/products", headers=affiliate).status_code == 403
    assert client.post("/v1/products", json=product_body(), headers=operator).status_code == 403


def test_products_list_pages_with_a_cursor(client: TestClient, operator: dict[str, str]) -> None:
    _, headers = apply_seller(client)
    ids = [create_product(client, headers)["id"] for _ in range(5)]
    seen, cursor = [], None
    for _ in range(5):
        page = client.get("/v1/products", params={"limit": 2} | ({"cursor": cursor} if cursor else {}),
                          headers=headers).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    problem(client.get("/v1/products", params={"cursor": "!!"}, headers=headers), 422)
