"""The Four E's funnel on a constructed history: visits and product views counted server-side
without bots and without a row per request, referral clicks, carts started and checkouts begun,
paid orders, repeat buyers and advocates; who may read which rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from kernel.clock import clock
from kernel.tasking import installed_celery
from tests.conftest import Backend, bearer
from tests.orders.world import Party, World, cart, checkout, ok, worked_example

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120"}
OTHER_BROWSER = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Version/17.0"}
BOT = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}


def flush() -> None:
    """What beat does every minute: counters from the store into their daily rows."""
    for name in ("affiliates.flush_clicks", "affiliates.flush_traffic"):
        installed_celery().tasks[name].apply()


def pay(client: TestClient, operator: dict[str, str], order: dict[str, Any]) -> None:
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))


def buy(client: TestClient, world: World, operator: dict[str, str], slug: str, email: str) -> None:
    pay(client, operator, ok(checkout(client, slug, cart(world, ("X-PRO", 1), email=email)), 201))


def advocate(client: TestClient, world: World, email: str) -> Party:
    """A buyer who joins as an affiliate, with a storefront of their own."""
    body = ok(client.post("/v1/affiliates", json={"name": "Ann Advocate", "email": email, "audience": "friends"}), 201)
    party = Party(body["affiliate"]["id"], bearer(body["api_key"]), email)
    ok(client.post(f"/v1/affiliates/{party.id}/approve", headers=world.operator))
    world.affiliates["Ann"] = party
    world.join("Ann", "X")
    world.storefront("Ann", "ann-store", ["X-PRO"])
    return party


def test_the_four_es_of_a_storefront_its_affiliate_and_a_program(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    pro = world.products["X-PRO"]
    for headers in (BROWSER, BROWSER, OTHER_BROWSER, BOT):  # two visitors; a repeat and a bot are not visits
        ok(client.get("/v1/storefronts/a-store/products", headers=headers))
    for headers in (BROWSER, OTHER_BROWSER, BOT):
        ok(client.get(f"/v1/storefronts/a-store/products/{pro}", headers=headers))
    link = ok(client.post("/v1/referral-links", headers=world.affiliates["A"].headers,
                          json={"storefront_id": _storefront_id(client, world)}), 201)
    client.get(f"/r/{link['code']}", headers=BROWSER, follow_redirects=False)
    failed = checkout(client, "a-store", cart(world, ("X-PRO", 1000), email="ann@example.com"))
    assert failed.status_code == 409, failed.text  # not enough stock: a cart started all the same
    buy(client, world, operator, "a-store", "ann@example.com")
    buy(client, world, operator, "a-store", "bob@example.com")
    clock.advance(timedelta(days=2))
    buy(client, world, operator, "a-store", "ann@example.com")  # ann comes back: a repeat buyer
    advocate(client, world, "ann@example.com")
    buy(client, world, operator, "ann-store", "carl@example.com")  # ann brought carl: an advocate
    flush()

    def stages(group_by: str, headers: dict[str, str] = operator) -> dict[str, dict[str, Any]]:
        rows = ok(client.get("/v1/reports/funnel", params={"group_by": group_by}, headers=headers))
        return {row["name"]: row for row in rows}

    front = stages("storefront")["A-Store"]
    assert (front["visits"], front["clicks"], front["product_views"]) == (2, 1, 2)
    assert (front["carts_started"], front["checkouts_begun"], front["orders"]) == (4, 3, 3)
    assert (front["repeat_buyers"], front["advocates"]) == (1, 1)
    assert (front["view_rate"], front["cart_rate"], front["checkout_rate"], front["order_rate"]) == (
        round(2 / 3, 3), 2.0, 0.75, 1.0)
    a = stages("affiliate", world.affiliates["A"].headers)
    assert list(a) == ["A"]
    assert (a["A"]["visits"], a["A"]["orders"], a["A"]["advocates"]) == (2, 3, 1)
    program = stages("program", world.sellers["X"].headers)
    assert list(program) == ["X"]
    # X's product page was viewed twice; its lines were in four orders placed and paid
    assert (program["X"]["product_views"], program["X"]["checkouts_begun"], program["X"]["orders"]) == (2, 4, 4)
    assert program["X"]["clicks"] is None
    assert client.get("/v1/reports/funnel", params={"group_by": "program"},
                      headers=world.affiliates["A"].headers).status_code == 403
    csv_text = client.get("/v1/reports/funnel", params={"group_by": "storefront", "format": "csv"},
                          headers=operator).text
    assert csv_text.splitlines()[0].startswith("group_id,name,visits,clicks,product_views")


def _storefront_id(client: TestClient, world: World) -> str:
    rows = ok(client.get("/v1/storefronts", headers=world.affiliates["A"].headers))["items"]
    return str(next(row["id"] for row in rows if row["slug"] == "a-store"))
