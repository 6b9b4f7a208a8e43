"""Random sequences of checkouts (with seller X's shipping rates), payments, fulfilment, partial
refunds (with and without their shipping) and the clock moving keep every invariant of the ledger
audit, buyer paid = seller nets (with their shipping) + commissions + fees to the minor unit, and
the growth rollups kept on the way equal a recomputation from the orders and the journal
(hypothesis, through the HTTP API)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from kernel.clock import clock
from kernel.db import session_scope
from kernel.tasking import installed_celery
from marketplace.bootstrap import audit_ledger
from orders.service import rollups
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example

_stores = itertools.count(1)
# X-ODD's price (333) makes every share round: 8 % of 333 per unit is 26.64, so refunds of
# single units out of 7 exercise the cumulative rounding of partial refunds.
SKUS = ["X-PRO", "X-BASIC", "Y-KIT", "X-ODD"]


# The main run tries MAIN_RUN_EXAMPLES histories on each backend; the full count runs once, on
# PostgreSQL, under `pytest -m exhaustive` (it was the suite's longest single test: ~7 minutes).
MAIN_RUN_EXAMPLES = 3
FULL_EXAMPLES = 6


def test_random_order_histories_keep_the_ledger_exact_and_the_rollups_equal_a_recomputation(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    _random_histories(client, operator, env, MAIN_RUN_EXAMPLES)


@pytest.mark.exhaustive
@pytest.mark.postgres_only
def test_random_order_histories_keep_the_ledger_exact_on_the_full_example_count(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    _random_histories(client, operator, env, FULL_EXAMPLES)


def _random_histories(client: TestClient, operator: dict[str, str], env: Backend, examples: int) -> None:
    class OrderHistories(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            slug = f"prop-{next(_stores)}"
            self.slug = slug
            self.world = worked_example(client, operator, slug=slug)
            self.world.product("X", f"Odd {slug}", [(f"X-ODD-{slug}", "Odd", 333, 10_000)])
            self.world.variants["X-ODD"] = self.world.variants[f"X-ODD-{slug}"]
            self.world.products["X-ODD"] = self.world.products[f"X-ODD-{slug}"]
            for sku in ("X-BASIC", "X-ODD"):
                ok(client.post(f"/v1/storefronts/{slug}/listings", headers=self.world.affiliates["A"].headers,
                               json={"product_id": self.world.products[sku]}), 201)
            # X ships with a rate (so every cart with X chooses one), Y without (its part ships free).
            shipping = ok(client.post("/v1/shipping-profiles", headers=self.world.sellers["X"].headers, json={
                "name": "Domestic", "currency": "USD", "zones": ["US"],
                "rates": [{"name": "Flat", "kind": "flat", "amount": 499, "free_over_amount": 9000},
                          {"name": "Each", "kind": "per_item", "amount": 151}]}), 201)
            self.rates = [rate["id"] for rate in shipping["rates"]]
            self.awaiting: list[dict[str, Any]] = []
            self.paid: list[dict[str, Any]] = []

        @rule(items=st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 7)), min_size=1, max_size=3),
              buyer=st.sampled_from(["p@example.com", "q@example.com"]), rate=st.integers(0, 1))
        def place(self, items: list[tuple[str, int]], buyer: str, rate: int) -> None:
            body = cart(self.world, *items, email=buyer)
            if any(sku.startswith("X-") for sku, _ in items):
                body["shipping"] = [{"seller_id": self.world.sellers["X"].id, "rate_id": self.rates[rate]}]
            response = checkout(client, self.slug, body)
            assert response.status_code == 201, response.text
            self.awaiting.append(response.json())

        @precondition(lambda self: self.awaiting)
        @rule(data=st.data())
        def pay(self, data: st.DataObject) -> None:
            order = self.awaiting.pop(data.draw(st.integers(0, len(self.awaiting) - 1)))
            response = client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator)
            if response.status_code == 409:  # it expired unpaid meanwhile: cancelled, stock back
                assert ok(client.get(f"/v1/orders/{order['id']}", headers=operator))["status"] == "cancelled"
                return
            ok(response)
            self.paid.append(order)

        @precondition(lambda self: self.paid)
        @rule(data=st.data())
        def refund_some(self, data: st.DataObject) -> None:
            order = data.draw(st.sampled_from(self.paid))
            current = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
            open_lines = [line for line in current["lines"] if line["refunded_quantity"] < line["quantity"]]
            if not open_lines:
                return
            line = data.draw(st.sampled_from(open_lines))
            qty = data.draw(st.integers(1, line["quantity"] - line["refunded_quantity"]))
            ok(client.post(f"/v1/orders/{order['id']}/refunds", headers=operator,
                           json={"lines": [{"order_line_id": line["id"], "quantity": qty}],
                                 "include_shipping": data.draw(st.booleans())}), 201)

        @precondition(lambda self: self.paid)
        @rule(data=st.data())
        def deliver(self, data: st.DataObject) -> None:
            order = data.draw(st.sampled_from(self.paid))
            sub = data.draw(st.sampled_from(order["sub_orders"]))
            seller = "X" if sub["seller_id"] == self.world.sellers["X"].id else "Y"
            headers = self.world.sellers[seller].headers
            for action in ("accept", "deliver"):
                client.post(f"/v1/sub-orders/{sub['id']}/{action}", headers=headers)  # may be 409: fine

        @rule(days=st.integers(1, 40))
        def time_passes(self, days: int) -> None:
            clock.advance(timedelta(days=days))
            installed_celery().tasks["orders.release_matured"].apply()
            installed_celery().tasks["orders.expire_unpaid"].apply()

        @invariant()
        def audit_is_clean(self) -> None:
            with session_scope(env.runtime.sessions) as session:
                assert audit_ledger(session) == []

        @invariant()
        def buyer_paid_is_every_share_to_the_minor_unit(self) -> None:
            for order in self.paid:
                full = ok(client.get(f"/v1/orders/{order['id']}", headers=operator))
                shares = full["shares"]
                nets = sum(share["seller_net"]["amount"] for share in shares)
                shipping = sum(share["shipping"]["amount"] for share in shares)
                assert full["total"]["amount"] == (nets + full["commission_total"]["amount"]
                                                   + full["platform_fee"]["amount"])
                assert full["shipping"]["amount"] == shipping
                assert all(0 <= s["refunded_shipping"]["amount"] <= s["shipping"]["amount"] for s in shares)
                assert full["refunded"]["amount"] == sum(share["refunded"]["amount"] for share in shares)

        @invariant()
        def rollups_equal_a_recomputation(self) -> None:
            with session_scope(env.runtime.sessions) as session:
                report = rollups.rebuild(session, write=False)
            assert (report.differences, report.journal_mismatches) == ([], [])

        @invariant()
        def everything_held_is_owed_to_someone(self) -> None:
            for row in ok(client.get("/v1/platform/balances", headers=operator)):
                owed = (row["payees_pending"] + row["payees_available"] + row["payees_in_transit"] + row["fees"]
                        + row["refunds_owed"])
                assert owed == -row["clearing"] - row["paid_out"]

    run_state_machine_as_test(
        OrderHistories,
        settings=settings(max_examples=examples, stateful_step_count=20, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
