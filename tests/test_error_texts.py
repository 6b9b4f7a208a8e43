"""Error texts a client developer reads: plain English, the names they know (SKUs, not ids),
what is left, and where a broken body breaks. Through the HTTP API, both backends."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from kernel.auth import Role
from tests.conftest import Backend, bearer, issue_key
from tests.orders.world import World, cart, checkout, ok


def test_a_key_of_the_wrong_role_is_told_which_key_it_needs_in_plain_english(
    client: TestClient, env: Backend
) -> None:
    affiliate_key = bearer(issue_key(env, Role.AFFILIATE, uuid.uuid4()))
    refused = client.get("/v1/payout-batches", headers=affiliate_key)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "this action needs an operator key; yours is an affiliate key"
    seller_key = bearer(issue_key(env, Role.SELLER, uuid.uuid4()))
    refused = client.get("/v1/payout-holds", headers=seller_key)
    assert refused.json()["detail"] == "this action needs an operator key; yours is a seller key"


def test_a_body_that_is_not_json_says_so_and_where_it_breaks(client: TestClient) -> None:
    refused = client.post("/v1/sellers", content=b'{"name": "Ledgerly",\n "email": }',
                          headers={"Content-Type": "application/json"})
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["type"].endswith("/invalid-json")
    assert problem["detail"] == ("the request body is not valid JSON: Expecting value at line 2, column 11 "
                                 "(character 31)")
    assert "JSON decode error" not in refused.text


def test_checkout_short_of_stock_names_the_sku_and_how_many_are_left(
    client: TestClient, operator: dict[str, str]
) -> None:
    world = World(client, operator)
    world.seller("X")
    world.product("X", "Kit", [("KIT-ONE", "One", 1000, 3), ("KIT-TWO", "Two", 2000, 5)])
    world.program("X", {"default": {"bps": 1000}})
    world.affiliate("A", joins=["X"])
    world.storefront("A", "a-shop", ["KIT-ONE"])
    refused = checkout(client, "a-shop", cart(world, ("KIT-ONE", 4), ("KIT-TWO", 1)))
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["detail"] == "not enough stock of KIT-ONE: 3 left, the cart asks for 4"
    assert problem["sku"] == "KIT-ONE" and problem["available"] == 3
    assert problem["variant_id"] == world.variants["KIT-ONE"]
    ok(checkout(client, "a-shop", cart(world, ("KIT-ONE", 3))), 201)


def test_a_body_that_is_not_utf8_is_invalid_json_not_a_bare_400(client: TestClient) -> None:
    refused = client.post("/v1/sellers", content=b'{"name": "L\xffdgerly"}',
                          headers={"Content-Type": "application/json"})
    assert refused.status_code == 422
    assert refused.json()["type"].endswith("/invalid-json")
    assert refused.json()["detail"] == "the request body is not valid JSON: it is not UTF-8 text (byte 11)"
