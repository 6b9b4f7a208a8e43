"""The load test's own pieces (seed, oversell check, the locustfile's requests) and the checkout
fast path's edge cases (PostgreSQL writes a whole order in one statement; SQLite through the ORM):
both backends, through the HTTP API."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from catalog.models import Variant
from loadtests import traffic as locustfile  # the locustfile's requests, without importing Locust
from loadtests.seed import oversold_variants, seed_platform
from tests.conftest import REPO_ROOT, Backend
from tests.orders.world import World, cart, checkout, ok


def _checkout(client: TestClient, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})


def test_seeded_world_takes_the_locust_carts_and_the_oversell_check_catches_lost_stock(
    client: TestClient, env: Backend, tmp_path: Path
) -> None:
    seed = seed_platform(env.settings.database_url, "http://testserver", stock=50, client=client)
    assert oversold_variants(env.settings.database_url, seed) == 0
    rng = random.Random(7)
    taken = 0
    for front in seed["storefronts"]:
        items = locustfile.cart_items(front["products"], rng)
        order = ok(_checkout(client, f"/v1/storefronts/{front['slug']}/orders",
                             locustfile.checkout_body(items, rng)), 201)
        taken += sum(line["quantity"] for line in order["lines"])
    redirect = client.get(f"/r/{seed['links'][0]['code']}", follow_redirects=False)
    assert redirect.status_code == 302 and "mk_ref=" in redirect.headers["location"]
    token = redirect.headers["location"].split("mk_ref=")[1].split("&")[0]
    referred = ok(_checkout(client, "/v1/checkout", locustfile.checkout_body(
        locustfile.cart_items(seed["products"], rng), rng, token)), 201)
    assert taken > 0 and referred["total"]["amount"] > 0
    # Orders hold their units: stock + held == initial for every variant.
    assert oversold_variants(env.settings.database_url, seed) == 0
    # The locustfile itself loads this seed (in a child process: Locust monkey-patches with gevent).
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed))
    loaded = subprocess.run(
        [sys.executable, "-c", "import loadtests.locustfile as f; print(len(f.SEED['storefronts']), f.MIX)"],
        env={**os.environ, "MARKETPLACE_SEED_FILE": str(seed_file)}, cwd=REPO_ROOT, capture_output=True, text=True,
    )
    assert loaded.returncode == 0 and loaded.stdout.startswith("4 "), loaded.stderr[-2000:]
    # A unit that vanishes (stock changed behind the orders' back) is caught.
    variant_id = next(iter(seed["initial_stock"]))
    with env.runtime.engine.begin() as conn:
        conn.execute(update(Variant).where(Variant.id == uuid.UUID(variant_id)).values(stock=Variant.stock - 1))
    assert oversold_variants(env.settings.database_url, seed) == 1


@pytest.fixture
def world(client: TestClient, operator: dict[str, str]) -> World:
    w = World(client, operator)
    w.seller("X")
    w.seller("Y")
    w.product("X", "Kit", [("X-1", "One", 1000, 5), ("X-2", "Two", 2000, 5)])
    w.product("Y", "Box", [("Y-1", "One", 500, 1)])
    w.program("X", {"default": {"bps": 1000}, "first_order_bonus": {"bps": 500}})
    w.program("Y", {"default": {"bps": 1000}})
    w.affiliate("A", joins=["X", "Y"])
    w.storefront("A", "a-shop", ["X-1", "X-2", "Y-1"])
    return w


def test_storefront_owner_buying_in_own_storefront_is_a_self_referral_that_earns_nothing(
    client: TestClient, world: World
) -> None:
    body = cart(world, ("X-1", 1), email=world.affiliates["A"].email.upper())
    order_id = ok(checkout(client, "a-shop", body), 201)["id"]
    order = ok(client.get(f"/v1/orders/{order_id}", headers=world.operator))
    assert order["self_referral"] is True and order["attribution_source"] == "storefront"
    assert order["commissions"] == [] and order["commission_total"]["amount"] == 0


def test_a_cart_with_one_line_out_of_stock_takes_nothing_and_writes_no_order(
    client: TestClient, world: World
) -> None:
    response = checkout(client, "a-shop", cart(world, ("X-1", 2), ("X-2", 1), ("Y-1", 2)))
    assert response.status_code == 409 and response.json()["type"].endswith("out-of-stock")
    assert ok(client.get("/v1/orders", headers=world.operator))["items"] == []
    product = ok(client.get(f"/v1/storefronts/a-shop/products/{world.products['X-1']}"))
    assert {v["sku"]: v["stock"] for v in product["variants"]} == {"X-1": 5, "X-2": 5}
    # The same cart without the short line goes through and takes exactly its units.
    ok(checkout(client, "a-shop", cart(world, ("X-1", 2), ("X-2", 1), ("Y-1", 1))), 201)
    product = ok(client.get(f"/v1/storefronts/a-shop/products/{world.products['X-1']}"))
    assert {v["sku"]: v["stock"] for v in product["variants"]} == {"X-1": 3, "X-2": 4}


def test_first_order_bonus_is_paid_on_a_buyers_first_order_with_a_seller_only(
    client: TestClient, world: World
) -> None:
    def commission(order_id: str) -> int:
        return int(ok(client.get(f"/v1/orders/{order_id}", headers=world.operator))["commission_total"]["amount"])

    first = ok(checkout(client, "a-shop", cart(world, ("X-1", 1), email="new@buyers.example")), 201)
    again = ok(checkout(client, "a-shop", cart(world, ("X-1", 1), email="new@buyers.example")), 201)
    assert commission(first["id"]) == 150  # 1000 bps + 500 bps bonus of 1000
    assert commission(again["id"]) == 100


def test_volume_tier_counts_the_affiliates_earning_orders_but_not_self_referrals(
    client: TestClient, operator: dict[str, str]
) -> None:
    w = World(client, operator)
    w.seller("X")
    w.product("X", "Kit", [("X-1", "One", 1000, 10)])
    w.program("X", {"default": {"bps": 500}, "tiers": [{"min_orders": 2, "bps": 900}]})
    w.affiliate("A", joins=["X"])
    w.storefront("A", "a-shop", ["X-1"])

    def commission(email: str) -> int:
        order_id = ok(checkout(client, "a-shop", cart(w, ("X-1", 1), email=email)), 201)["id"]
        return int(ok(client.get(f"/v1/orders/{order_id}", headers=operator))["commission_total"]["amount"])

    assert commission("one@buyers.example") == 50
    assert commission(w.affiliates["A"].email) == 0  # a self-referral: not counted toward the tier
    assert commission("two@buyers.example") == 50
    assert commission("three@buyers.example") == 90  # two earning orders before it this month


def test_no_path_matches_routes_of_two_routers_so_inclusion_order_changes_only_cost() -> None:
    """marketplace.app includes the hot routers first (FastAPI matches routes in inclusion
    order). That is only a speed-up if no request path can match routes of two routers: then the
    first full (or method-only) match is the same route whatever the order."""
    import re

    from fastapi.routing import APIRoute
    from starlette.routing import compile_path

    from affiliates import api as affiliates_api
    from catalog import api as catalog_api
    from kernel import stripe_webhooks
    from marketplace import people_api, sessions_api, system_api
    from orders import api as orders_api
    from payouts import api as payouts_api

    routers = {"system": system_api.router, "catalog": catalog_api.router, "affiliates": affiliates_api.router,
               "affiliates (buyers)": affiliates_api.buyer_router, "orders": orders_api.router,
               "payouts": payouts_api.router, "webhooks": stripe_webhooks.router, "people": people_api.router,
               "sessions": sessions_api.router}
    paths = [(name, router.prefix + route.path if not route.path.startswith(router.prefix) else route.path)
             for name, router in routers.items() for route in router.routes if isinstance(route, APIRoute)]
    assert len(paths) > 90
    overlaps = [
        (a, path_a, b, path_b)
        for a, path_a in paths for b, path_b in paths
        if a != b and compile_path(path_b)[0].match(re.sub(r"\{[^}]+\}", "x", path_a))
    ]
    assert overlaps == []
