"""A seller's page of sub-orders costs the same number of statements however many rows it shows
(issue 18: it used to load each row's order separately), and its cursor still walks every row once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example


@contextmanager
def counted(env: Backend) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(env.runtime.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(env.runtime.engine, "before_cursor_execute", record)


def test_a_sellers_sub_order_page_costs_the_same_statements_for_2_rows_as_for_10_and_pages_through_all(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    y = world.sellers["Y"].headers
    made = [ok(checkout(client, "a-store", cart(world, ("Y-KIT", 1))), 201) for _ in range(10)]
    for order in made[:5]:
        ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))

    with counted(env) as small:
        two = ok(client.get("/v1/sub-orders?limit=2", headers=y))
    with counted(env) as large:
        ten = ok(client.get("/v1/sub-orders?limit=10", headers=y))

    assert len(two["items"]) == 2 and len(ten["items"]) == 10
    # Was 19 and 75 (7 statements more a row). The ten include paid parts whose shipping address
    # the seller reads: one batched INSERT of the buyer-data access log (orders.service.buyer_policy)
    # for the page, which the two unpaid newest do not need.
    reads = [s for s in large if not s.startswith("INSERT INTO buyer_data_access")]
    assert len(reads) == len(small) and len(large) <= len(small) + 1, (small, large)
    paid = {o["id"] for o in made[:5]}
    assert all((item["ship_to"] is not None) == (item["order_id"] in paid) for item in ten["items"])
    assert {item["ship_to"]["name"] for item in ten["items"] if item["ship_to"]} == {"Bea Buyer"}
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = ok(client.get("/v1/sub-orders", headers=y, params=params))
        seen += [item["order_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [o["id"] for o in reversed(made)]  # newest first, each once


def test_an_operators_order_page_logs_every_read_of_buyer_data_in_one_insert(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    made = [ok(checkout(client, "a-store", cart(world, ("Y-KIT", 1), email=f"b{i}@example.com")), 201)
            for i in range(6)]
    with counted(env) as statements:
        page = ok(client.get("/v1/orders?limit=10", headers=operator))
    assert [o["id"] for o in page["items"]] == [o["id"] for o in reversed(made)]
    inserts = [s for s in statements if s.startswith("INSERT INTO buyer_data_access")]
    assert len(inserts) == 1, inserts  # was one a row: each row's charter read flushed the one before
    logged = ok(client.get("/v1/buyer-data-access?limit=100", headers=operator))
    assert {row["order_id"] for row in logged} >= {o["id"] for o in made}
