"""The checkout's two forms of its write (PostgreSQL's one statement, `orders.service.checkout_pg`, and the
step-by-step write SQLite uses) are one set of rules: the same carts through each, on PostgreSQL,
write the very same rows. And the one-statement form stays the few round trips it is meant to be."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text, update

from affiliates.models import AffiliateMonthlySales
from catalog.models import Variant
from kernel.clock import clock
from kernel.db import autocommit_engine, session_scope
from kernel.errors import AppError
from orders.models import Commission, IdempotencyKey, Order, OrderLine, SubOrder
from orders.service import checkout
from tests.conftest import Backend
from tests.orders.world import Party, World, cart, ok

pytestmark = pytest.mark.postgres_only

WRITTEN = (Order, SubOrder, OrderLine, Commission, IdempotencyKey, AffiliateMonthlySales)


def _world(client: TestClient, operator: dict[str, str]) -> tuple[World, str]:
    """Three sellers with levels: X pays 800 bps + a first-order bonus + a recruiter override,
    Y 600 bps rising to 900 from an affiliate's 3rd order of the month, Z 500 bps with a 10 %
    coupon and only 5 units. A (recruited by R) sells all three; its storefront splits 70/30
    with S, who is a member of X and Y only. Returns the world and a referral token of A's."""
    w = World(client, operator)
    for seller in ("X", "Y", "Z"):
        w.seller(seller)
    w.product("X", "Suite", [("X-BASIC", "Basic", 1999, 100), ("X-PRO", "Pro", 4999, 100)])
    w.product("Y", "Cable", [("Y-KIT", "Standard", 1250, 100), ("Y-BRAID", "Braided", 1850, 100)])
    w.product("Z", "Beans", [("Z-250", "250 g", 1401, 5)])
    w.program("X", {"default": {"bps": 800}, "first_order_bonus": {"bps": 200}, "recruiter_override_bps": 100})
    w.program("Y", {"default": {"bps": 600}, "tiers": [{"min_orders": 2, "bps": 900}]})
    z_program = w.program("Z", {"default": {"bps": 500}}, coupon_discount_bps=1000)
    recruiter = ok(client.post("/v1/affiliates", json={"name": "R", "email": "r@partners.example"}), 201)
    a = ok(client.post("/v1/affiliates", json={"name": "A", "email": "a@partners.example",
                                               "referral_code": recruiter["affiliate"]["referral_code"]}), 201)
    for body in (recruiter, a):
        ok(client.post(f"/v1/affiliates/{body['affiliate']['id']}/approve", headers=operator))
    w.affiliates["A"] = Party(a["affiliate"]["id"], {"Authorization": f"Bearer {a['api_key']}"}, "a@partners.example")
    for seller in ("X", "Y", "Z"):
        w.join("A", seller)
    w.affiliate("S", joins=["X", "Y"])
    w.storefront("A", "a-shop", ["X-PRO", "X-BASIC", "Y-KIT", "Y-BRAID", "Z-250"], splits=[("A", 70), ("S", 30)])
    ok(client.post(f"/v1/programs/{z_program}/coupons", headers=w.sellers["Z"].headers,
                   json={"code": "BEANS10", "affiliate_id": w.affiliates["A"].id}), 201)
    link = ok(client.post("/v1/referral-links", headers=w.affiliates["A"].headers,
                          json={"target_url": "https://shop.example/beans"}), 201)
    location = client.get(f"/r/{link['code']}", follow_redirects=False).headers["location"]
    return w, parse_qs(urlsplit(location).query)["mk_ref"][0]


def _carts(w: World, token: str) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(storefront, Idempotency-Key, body): every rule the write touches."""
    return [
        # several sellers and levels, the 70/30 split, X's first-order bonus and R's override
        ("a-shop", "k1", cart(w, ("X-PRO", 1), ("Y-KIT", 2), email="b1@buyers.example")),
        # the same buyer again: no first-order bonus with X or Y now; Y's 2nd order this month
        ("a-shop", "k2", cart(w, ("X-BASIC", 1), ("Y-BRAID", 1), email="b1@buyers.example")),
        # Y's tier reached (two earlier orders this month); a self-referral counts nothing
        ("a-shop", "k3", cart(w, ("Y-KIT", 1), email="b2@buyers.example")),
        ("a-shop", "k4", cart(w, ("Y-KIT", 1), email="a@partners.example")),
        # a referral click outside the storefront (no split), one seller of which S is not a member
        (None, "k5", cart(w, ("X-PRO", 1), ("Z-250", 1), email="b3@buyers.example", attribution_token=token)),
        # a coupon: Z's lines discounted, attributed to the coupon's affiliate
        (None, "k6", cart(w, ("Z-250", 2), ("X-BASIC", 1), email="b4@buyers.example", coupon_code="beans10")),
        # a retry (the same order), then the same key with another cart (refused)
        ("a-shop", "k1", cart(w, ("X-PRO", 1), ("Y-KIT", 2), email="b1@buyers.example")),
        ("a-shop", "k1", cart(w, ("X-PRO", 2), email="b1@buyers.example")),
        # stock exhaustion: 2 of Z's 5 units are left; 3 is too many, nothing is written
        (None, "k7", cart(w, ("Y-KIT", 1), ("Z-250", 3), email="b5@buyers.example")),
        (None, "k8", cart(w, ("Z-250", 2), email="b6@buyers.example")),
        (None, "k9", cart(w, ("Z-250", 1), email="b7@buyers.example")),
    ]


def _request(storefront: str | None, key: str, body: dict[str, Any]) -> checkout.CheckoutRequest:
    """The request the API builds from this body (orders.api)."""
    return checkout.CheckoutRequest(
        items=[checkout.CartItem(uuid.UUID(i["variant_id"]), i["quantity"]) for i in body["items"]],
        buyer_email=body["buyer"]["email"], buyer_name=body["buyer"]["name"],
        shipping_address=body["shipping_address"], idempotency_key=key, storefront_slug=storefront,
        coupon_code=body.get("coupon_code"), attribution_token=body.get("attribution_token"),
        canonical_body=body,
    )


def _place(env: Backend, one_statement: bool, carts: list[tuple[str | None, str, dict[str, Any]]]) -> list[str]:
    """Each cart through `place_order` in its own unit of work, as the API runs it (the one
    statement on an autocommit connection); what each one answered."""
    bind = autocommit_engine(env.runtime.engine) if one_statement else None
    answers = []
    for storefront, key, body in carts:
        try:
            with session_scope(env.runtime.sessions, bind=bind) as session:
                result = checkout.place_order(session, env.settings, _request(storefront, key, body),
                                              one_statement=one_statement)
                answers.append(f"replay of {key}" if result.replayed else "placed")
        except AppError as exc:
            answers.append(type(exc).__name__)
    return answers


def _snapshot(env: Backend) -> dict[str, Any]:
    """Every row the checkout writes, with generated ids replaced by what identifies the row (an
    order by its Idempotency-Key, a sub-order by order and seller, a line by order and position,
    a commission by line, affiliate and role), sorted; and every variant's stock."""
    with env.runtime.engine.connect() as conn:
        rows = {model.__tablename__: [dict(r) for r in conn.execute(select(model.__table__)).mappings()]
                for model in WRITTEN}
        stock = {r.id: (r.stock, r.updated_at) for r in conn.execute(select(Variant.id, Variant.stock,
                                                                             Variant.updated_at))}
    names: dict[uuid.UUID, str] = {}
    for key in rows["idempotency_keys"]:
        names[key["order_id"]] = f"order {key['key']}"
        names[key["id"]] = f"key {key['key']}"
    for sub in rows["sub_orders"]:
        names[sub["id"]] = f"{names[sub['order_id']]} / seller {sub['seller_id']}"
    for line in rows["order_lines"]:
        names[line["id"]] = f"{names[line['order_id']]} / line {line['position']}"
    for part in rows["commissions"]:
        names[part["id"]] = f"{names[part['order_line_id']]} / {part['role']} {part['affiliate_id']}"

    def named(row: dict[str, Any]) -> dict[str, Any]:
        out = {column: names.get(value, value) if isinstance(value, uuid.UUID) else value
               for column, value in row.items()}
        if "status_token_hash" in out:  # a random link token's hash (orders.service.order_links)
            out["status_token_hash"] = len(str(out["status_token_hash"] or ""))
        return out

    return {"stock": stock, **{table: sorted((named(r) for r in table_rows), key=repr)
                               for table, table_rows in rows.items()}}


def _undo(env: Backend, stock: dict[uuid.UUID, tuple[int, Any]]) -> None:
    """Back to the world before the carts: no orders, keys or counters; the stock as it was.
    One transaction per table: children go before parents, against the global lock order, which
    only a test's clean-up may do, and then not within one transaction (kernel.locking)."""
    for model in reversed(WRITTEN):
        with env.runtime.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {model.__tablename__}"))
    with env.runtime.engine.begin() as conn:
        for variant_id, (level, updated_at) in stock.items():
            conn.execute(update(Variant).where(Variant.id == variant_id).values(stock=level, updated_at=updated_at))


def test_the_one_statement_write_and_the_step_by_step_write_store_the_same_rows(
    client: TestClient, operator: dict[str, str], env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, token = _world(client, operator)
    carts = _carts(w, token)
    at = clock.now() + timedelta(minutes=1)
    monkeypatch.setattr(clock, "now", lambda: at)  # both forms write at the same time
    before = _snapshot(env)["stock"]

    step_by_step = _place(env, False, carts)
    written_step_by_step = _snapshot(env)
    _undo(env, before)
    one_statement = _place(env, True, carts)
    written_one_statement = _snapshot(env)

    assert step_by_step == one_statement == [
        "placed", "placed", "placed", "placed", "placed", "placed", "replay of k1", "IdempotencyKeyReused",
        "OutOfStock", "placed", "OutOfStock",
    ]
    assert written_one_statement == written_step_by_step
    # The carts exercised what they are meant to (so the comparison above covers it).
    written = written_one_statement
    roles = {(c["role"], c["affiliate_id"]) for c in written["commissions"]}
    assert {("affiliate", w.affiliates["A"].id), ("split_partner", w.affiliates["S"].id)} <= {
        (role, str(affiliate)) for role, affiliate in roles}
    assert "recruiter_override" in {role for role, _ in roles}
    assert {o["attribution_source"] for o in written["orders"]} == {"storefront", "click", "coupon", "none"}
    assert any(o["discount_amount"] > 0 for o in written["orders"])
    assert any(o["self_referral"] for o in written["orders"])
    # A's earning orders with X (k1, k2, k5, k6), Y (k1, k2, k3) and Z (k5, k6); k4 is a self-referral
    assert sorted(r["orders"] for r in written["affiliate_monthly_sales"]) == [2, 3, 4]
    assert written["stock"][uuid.UUID(w.variants["Z-250"])][0] == 0
    assert len(written["idempotency_keys"]) == len(written["orders"]) == 7


def _statements(env: Backend, run: Callable[[], Any]) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(env.runtime.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(env.runtime.engine, "before_cursor_execute", record)
    return seen


def test_a_storefront_order_is_three_statements_and_a_referral_or_coupon_order_four(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    """The key with the variants, the affiliate with the programs (memberships, month-to-date
    counters), the write; a referral adds its click, a coupon its coupon (read once: the
    attribution's read serves the discount too). Every one of them is seen by the engine's
    events (the statement counter of kernel.metrics listens there), though sent as precompiled
    text."""
    w, token = _world(client, operator)

    def order(path: str, body: dict[str, Any]) -> None:
        ok(client.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}), 201)

    items = (("X-PRO", 1), ("Y-KIT", 1), ("Z-250", 1))
    order("/v1/storefronts/a-shop/orders", cart(w, *items))  # fills the storefront cache
    storefront = _statements(env, lambda: order("/v1/storefronts/a-shop/orders", cart(w, *items)))
    referral = _statements(env, lambda: order("/v1/checkout", cart(w, ("X-PRO", 1), attribution_token=token)))
    client.cookies.clear()  # the referral link's cookie would attribute the coupon order to its click
    coupon = _statements(env, lambda: order("/v1/checkout", cart(w, ("Z-250", 1), coupon_code="BEANS10")))
    assert len(storefront) == 3, storefront
    assert len(referral) == 4, referral
    assert len(coupon) == 4 and sum("FROM coupons" in s for s in coupon) == 1, coupon
    assert sum("INSERT INTO orders" in s for s in storefront) == 1
