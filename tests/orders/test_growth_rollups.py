"""The growth rollups: kept as orders are paid and refunded (once, however often the event is
delivered), read by the growth report with the period before and as CSV, rebuilt and checked
against the orders and the journal by `marketplace growth rebuild`."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from typer.testing import CliRunner

from kernel.clock import clock
from kernel.db import session_scope
from marketplace.cli import app as cli
from orders.models import GrowthDaily
from tests.conftest import Backend
from tests.orders.world import World, cart, checkout, ok, worked_example

runner = CliRunner()


def paid(client: TestClient, world: World, operator: dict[str, str], *items: tuple[str, int],
         email: str = "ann@example.com") -> dict[str, object]:
    order = ok(checkout(client, "a-store", cart(world, *items, email=email)), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    return dict(order)


def row(client: TestClient, headers: dict[str, str], group_by: str, group_id: str, **params: object) -> dict[str, Any]:
    rows = ok(client.get("/v1/reports/growth", params={"group_by": group_by, **params}, headers=headers))
    return next(r for r in rows if r["group_id"] == group_id)


def rebuild(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["growth", "rebuild", *args], catch_exceptions=False, terminal_width=200)
    return result.exit_code, result.output


def test_a_payment_delivered_twice_and_a_refund_count_once_net_of_refunds(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = paid(client, world, operator, ("X-PRO", 1), ("Y-KIT", 2))
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))  # re-delivered: nothing more
    detail = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
    kit = next(line for line in detail["lines"] if line["sku"] == "Y-KIT")
    ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator,
                   json={"lines": [{"order_line_id": kit["id"], "quantity": 1}]}), 201)

    y = row(client, operator, "seller", world.sellers["Y"].id)
    assert (y["orders"], y["revenue"], y["refunded"], y["fees"], y["commissions"]) == (1, 1250, 1250, 125, 100)
    a = row(client, operator, "affiliate", world.affiliates["A"].id)
    assert (a["orders"], a["revenue"], a["commissions"]) == (1, 7499 - 1250, 420 - 70)
    [front] = ok(client.get("/v1/reports/growth", params={"group_by": "storefront"}, headers=operator))
    assert (front["revenue"], front["commissions"], front["fees"]) == (7499 - 1250, 600 - 100, 750 - 125)
    program_x = row(client, operator, "program", world.programs["X"])
    assert (program_x["name"], program_x["revenue"], program_x["commissions"]) == ("X", 4999, 400)
    assert rebuild("--check")[0] == 0


def test_new_and_returning_customers_and_the_period_before(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    paid(client, world, operator, ("X-PRO", 1), email="ann@example.com")
    clock.advance(timedelta(days=10))
    paid(client, world, operator, ("X-PRO", 1), email="ann@example.com")
    paid(client, world, operator, ("X-PRO", 1), email="ann@example.com")  # same day: returning once
    paid(client, world, operator, ("X-PRO", 1), email="bob@example.com")

    x = row(client, operator, "seller", world.sellers["X"].id, days=5)
    assert (x["orders"], x["customers"], x["new_customers"], x["returning_customers"]) == (3, 2, 1, 1)
    assert (x["previous_orders"], x["previous_revenue"], x["previous_new_customers"]) == (1, 4999, 1)
    assert x["revenue_change"] == 2.0
    assert x["purchase_frequency"] == 1.5
    everything = row(client, operator, "seller", world.sellers["X"].id, days=30)
    assert (everything["orders"], everything["customers"], everything["new_customers"]) == (4, 2, 2)
    assert rebuild("--check")[0] == 0


def test_the_growth_report_exports_csv_with_names_beside_ids(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    paid(client, world, operator, ("X-PRO", 1), ("Y-KIT", 1))
    by_param = client.get("/v1/reports/growth", params={"group_by": "seller", "format": "csv"}, headers=operator)
    by_header = client.get("/v1/reports/growth", params={"group_by": "seller"},
                           headers={**operator, "Accept": "text/csv"})
    assert by_param.headers["content-type"].startswith("text/csv")
    assert by_header.text == by_param.text
    lines = list(csv.DictReader(io.StringIO(by_param.text)))
    assert {(r["name"], r["revenue"], r["sources.storefront"]) for r in lines} == {("X", "4999", "1"),
                                                                                   ("Y", "1250", "1")}


def test_a_seller_reads_its_own_seller_and_program_rows_only(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    paid(client, world, operator, ("X-PRO", 1), ("Y-KIT", 1))
    headers = world.sellers["Y"].headers
    programs = ok(client.get("/v1/reports/growth", params={"group_by": "program"}, headers=headers))
    assert [r["group_id"] for r in programs] == [world.programs["Y"]]
    assert client.get("/v1/reports/growth", params={"group_by": "storefront"}, headers=headers).status_code == 403


def test_rebuild_finds_a_rollup_that_drifted_repairs_it_and_then_agrees(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    paid(client, world, operator, ("X-PRO", 1), ("Y-KIT", 2))
    assert rebuild("--check")[0] == 0
    with session_scope(env.runtime.sessions) as session:
        session.execute(update(GrowthDaily).where(GrowthDaily.group_type == "seller").values(
            revenue=GrowthDaily.revenue + 1))
    code, output = rebuild("--check")
    assert code == 1 and "differs" in output and "revenue" in output
    assert rebuild()[0] == 1  # it differed; now it is rebuilt
    code, output = rebuild("--check")
    assert code == 0 and "agree with the orders and the journal" in output
    assert row(client, operator, "seller", world.sellers["Y"].id)["revenue"] == 2500
