"""Seed a running deployment for the load test, through its public HTTP API.

Only one thing bypasses the API: an operator key, issued straight into the database
(`kernel.auth.issue_key`), because the API issues operator keys only to operators.
Everything else is done the way sellers, affiliates and operators do it, so the seeded world
goes through the same validation and cache invalidation as real traffic.

The world: 5 approved sellers, each with 2 published products of 2-3 levels (variants) with
ample stock; one affiliate program per seller with a different commission plan (bps, flat per
unit, volume tiers, first-order bonus with a recruiter override, a product override); four
approved affiliates (a market maker "A" whose main storefront splits 70/30 with specialist "S",
a recruiter "R" and a creator "C" that R recruited), all members of every program; four
storefronts listing products across sellers; a few referral links.

CLI (any deployment; the database URL is only used for the operator key):

    python -m loadtests.seed --host http://127.0.0.1:8000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/marketplace --out seed.json

The JSON it writes is what `loadtests/locustfile.py` reads from `MARKETPLACE_SEED_FILE`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

INITIAL_STOCK = 1_000_000
CURRENCY = "USD"

# (seller name, plan rules, products: [(product name, [(level, unit price in minor units)])])
# "@product0" in a rule is replaced by the id of the seller's first product.
SELLERS: list[tuple[str, dict[str, Any], list[tuple[str, list[tuple[str, int]]]]]] = [
    ("Xylo Studio", {"default": {"bps": 800}},
     [("Studio Suite", [("Basic", 1999), ("Pro", 4999)]), ("Sound Pack", [("Lite", 900), ("Full", 2900)])]),
    ("Yarrow Cables", {"default": {"flat": 100}},
     [("Cable Kit", [("Standard", 1250), ("Braided", 1850)]), ("Adapter", [("USB-C", 799), ("HDMI", 1099)])]),
    ("Zinnia Tools", {"default": {"bps": 500},
                      "tiers": [{"min_orders": 50, "bps": 900}, {"min_amount": 1_000_000, "bps": 1100}]},
     [("Toolbox", [("Small", 3500), ("Large", 6500), ("Pro", 9900)]), ("Gloves", [("M", 1500), ("L", 1500)])]),
    ("Quill Paper", {"default": {"bps": 1000}, "first_order_bonus": {"bps": 200}, "recruiter_override_bps": 100},
     [("Notebook", [("A5", 1200), ("A4", 1600)]), ("Fountain Pen", [("Steel", 4500), ("Gold", 12900)])]),
    ("Ember Coffee", {"default": {"bps": 700}, "products": [{"product_id": "@product0", "flat": 150}]},
     [("Beans", [("250 g", 1400), ("1 kg", 4200)]), ("Grinder", [("Hand", 5900), ("Electric", 14900)])]),
]

# (slug, owner, seller indexes whose products it lists, split partners with weights)
STOREFRONTS: list[tuple[str, str, list[int], list[tuple[str, int]]]] = [
    ("maker-main", "A", [0, 1, 2, 3, 4], [("A", 70), ("S", 30)]),
    ("maker-tools", "A", [1, 2, 4], []),
    ("specialist-shop", "S", [0, 2, 3], []),
    ("creator-picks", "C", [0, 3, 4], []),
]


class SeedError(RuntimeError):
    pass


def _ok(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise SeedError(f"{response.request.method} {response.request.url.path}: "
                        f"{response.status_code} {response.text[:500]}")
    return response.json()


def issue_operator_key(database_url: str) -> str:
    """An operator key written straight into the database (the API only lets operators make them)."""
    from kernel import auth
    from kernel.db import session_scope
    from kernel.runtime import Runtime
    from kernel.settings import Settings

    runtime = Runtime(Settings(database_url=database_url, redis_url=None))
    try:
        with session_scope(runtime.sessions) as session:
            return auth.issue_key(session, auth.Role.OPERATOR, None, "load test seed").key
    finally:
        runtime.close()


def seed_platform(
    database_url: str, host: str, *, stock: int = INITIAL_STOCK, client: httpx.Client | None = None
) -> dict[str, Any]:
    """Seed the deployment at `host` (its database at `database_url`, for the operator key only).
    Returns what the locustfile needs: storefront slugs with their variant ids, referral link
    codes, every variant's initial stock. Names are unique per call, so seeding twice is fine.
    `client`: an httpx client to send the requests with (tests pass their in-process one)."""
    if client is None:
        with httpx.Client(base_url=host.rstrip("/"), timeout=30) as http:
            return _seed(http, database_url, stock)
    return _seed(client, database_url, stock)


def _seed(http: httpx.Client, database_url: str, stock: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    operator = {"Authorization": f"Bearer {issue_operator_key(database_url)}"}
    sellers: list[dict[str, Any]] = []
    for index, (name, rules, products) in enumerate(SELLERS):
        body = _ok(http.post("/v1/sellers", json={
            "name": name, "email": f"seller{index}-{run}@sellers.example"}), 201)
        headers = {"Authorization": f"Bearer {body['api_key']}"}
        seller_id = body["seller"]["id"]
        _ok(http.post(f"/v1/sellers/{seller_id}/approve", headers=operator))
        made = []
        for p, (product_name, levels) in enumerate(products):
            product = _ok(http.post("/v1/products", headers=headers, json={
                "name": product_name, "description": f"{product_name} by {name}", "category": "load",
                "tags": ["bench"], "currency": CURRENCY,
                "variants": [{"sku": f"S{index}-P{p}-V{v}-{run}", "name": level,
                              "price": {"amount": price, "currency": CURRENCY}, "stock": stock}
                             for v, (level, price) in enumerate(levels)],
            }), 201)
            _ok(http.post(f"/v1/products/{product['id']}/publish", headers=headers))
            made.append({"product_id": product["id"], "variant_ids": [v["id"] for v in product["variants"]]})
        plan = json.loads(json.dumps(rules).replace("@product0", made[0]["product_id"]))
        program = _ok(http.post("/v1/programs", headers=headers, json={
            "terms": f"{name} partner terms", "requires_approval": False,
            "attribution_window_days": 30, "holding_period_days": 30}), 201)
        _ok(http.post(f"/v1/programs/{program['id']}/plan-versions", headers=headers,
                      json={"rules": plan, "note": "load test plan"}), 201)
        sellers.append({"id": seller_id, "program_id": program["id"], "products": made})

    affiliates: dict[str, dict[str, Any]] = {}
    for code, role in (("A", "market maker"), ("S", "specialist"), ("R", "recruiter"), ("C", "creator")):
        apply: dict[str, Any] = {"name": f"{role.title()} {run}", "email": f"{code.lower()}-{run}@partners.example",
                                 "audience": role}
        if code == "C":
            apply["referral_code"] = affiliates["R"]["referral_code"]
        body = _ok(http.post("/v1/affiliates", json=apply), 201)
        affiliate_id = body["affiliate"]["id"]
        approved = _ok(http.post(f"/v1/affiliates/{affiliate_id}/approve", headers=operator))
        headers = {"Authorization": f"Bearer {body['api_key']}"}
        affiliates[code] = {"id": affiliate_id, "headers": headers, "referral_code": approved["referral_code"]}
        for seller in sellers:
            _ok(http.post(f"/v1/programs/{seller['program_id']}/memberships", headers=headers, json={}), 201)

    storefronts: list[dict[str, Any]] = []
    for slug_base, owner, seller_indexes, splits in STOREFRONTS:
        slug = f"{slug_base}-{run}"
        front: dict[str, Any] = {"slug": slug, "name": slug_base.replace("-", " ").title(), "currency": CURRENCY}
        if splits:
            front["splits"] = [{"affiliate_id": affiliates[a]["id"], "weight": w} for a, w in splits]
        storefront = _ok(http.post("/v1/storefronts", headers=affiliates[owner]["headers"], json=front), 201)
        listed = [p for i in seller_indexes for p in sellers[i]["products"]]
        for product in listed:
            _ok(http.post(f"/v1/storefronts/{slug}/listings", headers=affiliates[owner]["headers"],
                          json={"product_id": product["product_id"]}), 201)
        storefronts.append({"slug": slug, "id": storefront["id"], "products": listed})

    links: list[dict[str, Any]] = []
    for owner, target in (("C", {"product_id": sellers[3]["products"][1]["product_id"]}),
                          ("C", {"storefront_id": storefronts[3]["id"]}),
                          ("R", {"target_url": "https://recruiter.example/reviews"}),
                          ("A", {"product_id": sellers[2]["products"][0]["product_id"],
                                 "storefront_id": storefronts[0]["id"]})):
        link = _ok(http.post("/v1/referral-links", headers=affiliates[owner]["headers"], json=target), 201)
        links.append({"code": link["code"], "affiliate": owner})

    all_products = [p for s in sellers for p in s["products"]]
    return {
        "run": run,
        "currency": CURRENCY,
        "initial_stock": {v: stock for p in all_products for v in p["variant_ids"]},
        "storefronts": [{"slug": s["slug"], "products": s["products"]} for s in storefronts],
        # A referral checkout (POST /v1/checkout) may buy from any seller: the click attributes it.
        "products": all_products,
        "links": links,
    }


def oversold_variants(database_url: str, seed: dict[str, Any]) -> int:
    """How many seeded variants break stock conservation: stock now + units held by live orders
    (not cancelled, sub-order not rejected: those gave their stock back) != initial stock, or
    stock below zero. Zero means nothing was oversold or lost."""
    import psycopg

    initial: dict[str, int] = seed["initial_stock"]
    if not initial:
        return 0
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    if not url.startswith("postgresql://"):
        return _oversold_sqlalchemy(database_url, initial)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT v.id::text, v.stock, COALESCE(SUM(l.quantity) FILTER (
                       WHERE o.status <> 'cancelled' AND s.status <> 'rejected'), 0)
            FROM variants v
            LEFT JOIN order_lines l ON l.variant_id = v.id
            LEFT JOIN orders o ON o.id = l.order_id
            LEFT JOIN sub_orders s ON s.id = l.sub_order_id
            WHERE v.id = ANY(%s::uuid[])
            GROUP BY v.id, v.stock
            """,
            (list(initial),),
        ).fetchall()
    return _count_broken(initial, [(r[0], int(r[1]), int(r[2])) for r in rows])


def _oversold_sqlalchemy(database_url: str, initial: dict[str, int]) -> int:
    """The same check through SQLAlchemy, for the embedded SQLite default."""
    from sqlalchemy import and_, create_engine, func, select

    from catalog.models import Variant
    from orders.models import Order, OrderLine, SubOrder

    engine = create_engine(database_url)
    held = func.coalesce(func.sum(OrderLine.quantity), 0)
    try:
        with engine.connect() as conn:
            ids = [uuid.UUID(v) for v in initial]
            stock = dict(conn.execute(select(Variant.id, Variant.stock).where(Variant.id.in_(ids))).all())
            taken = dict(conn.execute(
                select(OrderLine.variant_id, held)
                .join(Order, Order.id == OrderLine.order_id)
                .join(SubOrder, SubOrder.id == OrderLine.sub_order_id)
                .where(OrderLine.variant_id.in_(ids),
                       and_(Order.status != "cancelled", SubOrder.status != "rejected"))
                .group_by(OrderLine.variant_id)
            ).all())
    finally:
        engine.dispose()
    rows = [(str(vid), int(s), int(taken.get(vid, 0))) for vid, s in stock.items()]
    return _count_broken(initial, rows)


def _count_broken(initial: dict[str, int], rows: list[tuple[str, int, int]]) -> int:
    seen = {vid for vid, _, _ in rows}
    missing = sum(1 for vid in initial if vid not in seen)  # a seeded variant that vanished counts too
    return missing + sum(1 for vid, stock, held in rows if stock < 0 or stock + held != initial[vid])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Seed a deployment for the load test (through its HTTP API).")
    parser.add_argument("--host", required=True, help="base URL of the API, e.g. http://127.0.0.1:8000")
    parser.add_argument("--database-url", required=True,
                        help="the deployment's DATABASE_URL (used only to issue an operator key)")
    parser.add_argument("--stock", type=int, default=INITIAL_STOCK, help="initial stock of every variant")
    parser.add_argument("--out", default="-", help="where to write the seed JSON (default: stdout)")
    args = parser.parse_args(argv)
    seed = seed_platform(args.database_url, args.host, stock=args.stock)
    text = json.dumps(seed, indent=2)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"seeded run {seed['run']}: {len(seed['storefronts'])} storefronts, "
              f"{len(seed['initial_stock'])} variants, {len(seed['links'])} links -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
