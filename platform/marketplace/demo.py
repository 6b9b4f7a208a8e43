"""`marketplace demo`: the many-to-many story, end to end, through the HTTP API (in-process).

Sellers and affiliates onboard, sellers list products with levels and run affiliate programs
(a tiered plan, a first-order bonus), a market maker sells from its storefront and splits with a
specialist, a partner shares a referral link, buyers order across sellers, pay, get their goods,
one asks for a partial refund, the holding period passes (the demo moves its own clock;
production has no way to), the operator runs a payout batch, and the ledger audit closes it.
Then a summary: who sold what, who earned what, who was paid what, and the growth figures.

The story starts in the past and ends now (`story_time`), so its timestamps never lie ahead of
the real clock when the same database is served afterwards.

`seed_storefront_demo` is the smaller part `marketplace serve` loads into a fresh embedded
platform so there is something to browse, and `seed_order_history` gives it a few orders placed
and delivered weeks ago, whose holding period has passed: balances a payout batch can pay.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table

from kernel import auth
from kernel.auth import Role
from kernel.clock import clock
from kernel.db import session_scope
from kernel.money import format_minor
from kernel.runtime import Runtime


class DemoError(RuntimeError):
    """A step of the story answered differently than the platform promises."""


def _ok(response: Any, status: int = 200) -> Any:
    if response.status_code != status:
        raise DemoError(f"{response.request.method} {response.request.url.path}: "
                        f"{response.status_code} {response.text[:300]}")
    return response.json()


@dataclass
class Cast:
    """Who is who in the story: name -> (id, auth headers)."""

    client: TestClient
    operator: dict[str, str]
    run: str
    sellers: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    affiliates: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)
    programs: dict[str, str] = field(default_factory=dict)

    def email(self, name: str) -> str:
        return f"{name.lower().replace(' ', '.')}+{self.run}@example.com"

    def seller(self, name: str, products: list[tuple[str, list[tuple[str, str, int]]]], plan: dict[str, Any],
               holding_days: int = 30) -> None:
        applied = _ok(self.client.post("/v1/sellers", json={
            "name": name, "email": self.email(name), "website": f"https://{name.split()[0].lower()}.example",
            "description": f"{name}: quality goods"}), 201)
        seller_id, headers = applied["seller"]["id"], {"Authorization": f"Bearer {applied['api_key']}"}
        _ok(self.client.post(f"/v1/sellers/{seller_id}/approve", headers=self.operator))
        _ok(self.client.post("/v1/sellers/me/payout-account", headers=headers,
                             json={"bank_reference": f"DE89 3704 0044 {seller_id[:4]}"}))
        _ok(self.client.post(f"/v1/sellers/{seller_id}/payout-account/verify", headers=self.operator))
        self.sellers[name] = (seller_id, headers)
        for product_name, levels in products:
            product = _ok(self.client.post("/v1/products", headers=headers, json={
                "name": product_name, "description": f"{product_name} from {name}", "category": "demo",
                "tags": ["demo"], "currency": "USD",
                "variants": [{"sku": f"{sku}-{self.run}", "name": level, "price": {"amount": price, "currency": "USD"},
                              "stock": 500} for sku, level, price in levels],
            }), 201)
            _ok(self.client.post(f"/v1/products/{product['id']}/publish", headers=headers))
            for (sku, _, _), variant in zip(levels, product["variants"], strict=True):
                self.variants[sku] = variant["id"]
                self.products[sku] = product["id"]
        program = _ok(self.client.post("/v1/programs", headers=headers, json={
            "terms": f"Sell {name} and earn", "requires_approval": False, "attribution_window_days": 30,
            "holding_period_days": holding_days, "coupon_discount_bps": 500}), 201)
        _ok(self.client.post(f"/v1/programs/{program['id']}/plan-versions", headers=headers,
                             json={"rules": plan, "note": "launch"}), 201)
        self.programs[name] = program["id"]

    def affiliate(self, name: str, joins: list[str], audience: str) -> None:
        applied = _ok(self.client.post("/v1/affiliates", json={
            "name": name, "email": self.email(name), "audience": audience, "markets": ["US"]}), 201)
        affiliate_id, headers = applied["affiliate"]["id"], {"Authorization": f"Bearer {applied['api_key']}"}
        _ok(self.client.post(f"/v1/affiliates/{affiliate_id}/approve", headers=self.operator))
        _ok(self.client.post("/v1/affiliates/me/payout-account", headers=headers,
                             json={"bank_reference": f"GB29 NWBK 6016 {affiliate_id[:4]}"}))
        _ok(self.client.post(f"/v1/affiliates/{affiliate_id}/payout-account/verify", headers=self.operator))
        self.affiliates[name] = (affiliate_id, headers)
        for seller in joins:
            _ok(self.client.post(f"/v1/programs/{self.programs[seller]}/memberships", headers=headers, json={}), 201)

    def storefront(self, owner: str, slug: str, skus: list[str], splits: list[tuple[str, int]] | None = None) -> str:
        headers = self.affiliates[owner][1]
        slug = f"{slug}-{self.run}"
        body: dict[str, Any] = {"slug": slug, "name": slug.replace("-", " ").title(), "currency": "USD"}
        if splits:
            body["splits"] = [{"affiliate_id": self.affiliates[a][0], "weight": w} for a, w in splits]
        _ok(self.client.post("/v1/storefronts", headers=headers, json=body), 201)
        for product_id in dict.fromkeys(self.products[sku] for sku in skus):
            _ok(self.client.post(f"/v1/storefronts/{slug}/listings", headers=headers,
                                 json={"product_id": product_id}), 201)
        return slug

    def order(self, slug: str | None, buyer: str, items: list[tuple[str, int]], token: str | None = None) -> Any:
        body: dict[str, Any] = {
            "items": [{"variant_id": self.variants[sku], "quantity": qty} for sku, qty in items],
            "buyer": {"email": self.email(buyer), "name": buyer},
            "shipping_address": {"line1": "1 Demo Way", "city": "Springfield", "postal_code": "12345", "country": "US"},
        }
        if token:
            body["attribution_token"] = token
        path = f"/v1/storefronts/{slug}/orders" if slug else "/v1/checkout"
        order = _ok(self.client.post(path, json=body, headers={"Idempotency-Key": f"demo-{uuid.uuid4().hex}"}), 201)
        _ok(self.client.post(f"/v1/orders/{order['id']}/mark-paid", headers=self.operator))
        return order

    def fulfil(self, order: dict[str, Any]) -> None:
        by_id = {seller_id: headers for seller_id, headers in self.sellers.values()}
        for sub in order["sub_orders"]:
            headers = by_id[sub["seller_id"]]
            _ok(self.client.post(f"/v1/sub-orders/{sub['id']}/accept", headers=headers))
            _ok(self.client.post(f"/v1/sub-orders/{sub['id']}/ship", headers=headers,
                                 json={"tracking_number": f"1Z{sub['id'][-8:]}", "carrier": "UPS"}))
            _ok(self.client.post(f"/v1/sub-orders/{sub['id']}/deliver", headers=headers))


SELLERS: list[tuple[str, list[tuple[str, list[tuple[str, str, int]]]], dict[str, Any]]] = [
    ("Lumen Software", [("Lumen Studio", [("LUMEN-BASIC", "Basic", 1999), ("LUMEN-PRO", "Pro", 4999),
                                          ("LUMEN-ENT", "Enterprise", 19900)])],
     {"default": {"bps": 800}, "tiers": [{"min_orders": 3, "bps": 1200}], "first_order_bonus": {"bps": 200}}),
    ("Northwind Audio", [("Studio Cable Kit", [("NW-CABLE", "Standard", 1250)]),
                         ("Monitor Headphones", [("NW-HP", "Pro", 8900)])],
     {"default": {"flat": 100}}),
    ("Trailhead Outfitters", [("Trail Pack", [("TH-PACK-S", "S", 6500), ("TH-PACK-L", "L", 7500)])],
     {"default": {"bps": 1000}}),
]


def seed_storefront_demo(client: TestClient, operator: dict[str, str], run: str = "demo") -> Cast:
    """Sellers with products and programs, affiliates, and two storefronts to browse."""
    cast = Cast(client, operator, run)
    for name, products, plan in SELLERS:
        cast.seller(name, products, plan)
    cast.affiliate("Makers Guild", ["Lumen Software", "Northwind Audio"], "a trade group of 40,000 makers")
    cast.affiliate("Studio Specialists", ["Lumen Software", "Northwind Audio"], "audio and video consultants")
    cast.affiliate("Outdoor Alliance", ["Trailhead Outfitters", "Northwind Audio"], "hiking clubs")
    cast.storefront("Makers Guild", "makers-guild", ["LUMEN-PRO", "NW-CABLE", "NW-HP"],
                    splits=[("Makers Guild", 70), ("Studio Specialists", 30)])
    cast.storefront("Outdoor Alliance", "outdoor-alliance", ["TH-PACK-S", "NW-CABLE"])
    return cast


@contextmanager
def story_time(days_ago: int) -> Iterator[None]:
    """Run a block as if it began `days_ago` days ago; the clock is back at real time afterwards.
    Steps inside move time forward with `clock.advance`, at most `days_ago` days in all."""
    clock.advance(-timedelta(days=days_ago))
    try:
        yield
    finally:
        clock.reset()


HISTORY_DAYS = 45  # > the longest holding period in the seed (30 days) + delivery


def seed_order_history(cast: Cast) -> int:
    """Orders placed, paid and delivered `HISTORY_DAYS` ago (call inside `story_time`); the
    caller releases their holding periods at real time: what a payout preview then finds."""
    makers, outdoor = f"makers-guild-{cast.run}", f"outdoor-alliance-{cast.run}"
    orders = [
        cast.order(makers, "Ada", [("LUMEN-PRO", 1), ("NW-CABLE", 2)]),
        cast.order(makers, "Grace", [("NW-HP", 1), ("LUMEN-PRO", 1)]),
        cast.order(makers, "Linus", [("LUMEN-PRO", 2)]),
        cast.order(outdoor, "Margaret", [("TH-PACK-S", 1), ("NW-CABLE", 1)]),
    ]
    for order in orders:
        cast.fulfil(order)
    return len(orders)


def operator_headers(runtime: Runtime, name: str = "demo") -> dict[str, str]:
    with session_scope(runtime.sessions) as session:
        key = auth.issue_key(session, Role.OPERATOR, None, name).key
    return {"Authorization": f"Bearer {key}"}


HOLDING_PASSES = 31  # days the story waits after delivery: past every holding period in it


def run_story(runtime: Runtime, console: Console) -> int:
    """The whole story; returns the exit code of the ledger audit (0: clean)."""
    from marketplace.app import create_app
    from marketplace.bootstrap import build_celery

    celery = build_celery(runtime.settings, in_process=True)  # the demo runs every task in this process
    run = uuid.uuid4().hex[:6]
    with TestClient(create_app(runtime=runtime, celery=celery)) as client, story_time(days_ago=HOLDING_PASSES + 1):
        operator = operator_headers(runtime)
        console.rule("[bold]1. Sellers, products, programs, affiliates, storefronts")
        cast = seed_storefront_demo(client, operator, run)
        makers, outdoor = f"makers-guild-{run}", f"outdoor-alliance-{run}"
        console.print(f"3 sellers, 3 affiliates, storefronts [bold]{makers}[/] (split 70/30) and [bold]{outdoor}[/]")

        console.rule("[bold]2. Referral clicks and orders across sellers")
        link = _ok(client.post("/v1/referral-links", headers=cast.affiliates["Outdoor Alliance"][1],
                               json={"target_url": "https://trailhead.example/packs"}), 201)
        clicked = client.get(f"/r/{link['code']}", follow_redirects=False)
        token = clicked.headers["location"].split("mk_ref=")[1].split("&")[0]
        orders = [
            cast.order(makers, "Ada", [("LUMEN-PRO", 1), ("NW-CABLE", 2)]),
            cast.order(makers, "Ada", [("NW-HP", 1)]),
            cast.order(makers, "Grace", [("LUMEN-PRO", 1), ("NW-HP", 1)]),
            cast.order(makers, "Linus", [("LUMEN-PRO", 2)]),
            cast.order(outdoor, "Grace", [("TH-PACK-S", 1), ("NW-CABLE", 1)]),
            cast.order(None, "Margaret", [("TH-PACK-L", 1)], token=token),
        ]
        console.print(f"{len(orders)} orders paid, {sum(len(o['sub_orders']) for o in orders)} sub-orders routed")

        console.rule("[bold]3. Fulfilment, a partial refund, the holding period passing")
        for order in orders:
            cast.fulfil(order)
        cable = next(line for line in orders[0]["lines"] if line["sku"].startswith("NW-CABLE"))
        _ok(client.post(f"/v1/orders/{orders[0]['id']}/refunds", headers=operator,
                        json={"lines": [{"order_line_id": cable["id"], "quantity": 1}], "reason": "arrived damaged"}),
            201)
        clock.advance(timedelta(days=HOLDING_PASSES))
        released = celery.tasks["orders.release_matured"].apply().get()
        console.print(f"refund of one cable; {HOLDING_PASSES} days later: {released}")

        console.rule("[bold]4. Payout batch")
        paid = _payout(client, operator, console)

        _summary(client, cast, operator, paid, console)
    console.rule("[bold]6. Ledger audit")
    from marketplace.ledger_report import run_ledger_audit

    return run_ledger_audit(runtime)


def _payout(client: TestClient, operator: dict[str, str], console: Console) -> dict[str, int]:
    """Preview, create, approve and run a USD payout batch with a progress bar."""
    from payouts.cli import run_batch_with_progress

    preview = _ok(client.post("/v1/payout-batches", headers=operator, json={"currency": "USD", "preview": True}))
    console.print(f"preview: {len(preview.get('payees', []))} payee(s) to pay")
    batch = _ok(client.post("/v1/payout-batches", headers=operator, json={"currency": "USD"}), 201)
    _ok(client.post(f"/v1/payout-batches/{batch['id']}/approve", headers=operator))
    run_batch_with_progress(uuid.UUID(batch["id"]), console)
    items = _ok(client.get(f"/v1/payout-batches/{batch['id']}/items", headers=operator, params={"limit": 200}))
    return {item["owner_id"]: item["amount"]["amount"] for item in items["items"] if item["status"] == "paid"}


def _summary(
    client: TestClient, cast: Cast, operator: dict[str, str], paid: dict[str, int], console: Console
) -> None:
    console.rule("[bold]5. Who sold, earned and was paid what")
    sellers = Table("seller", "orders", "customers", "sales (net of refunds)", "paid out")
    names = {seller_id: name for name, (seller_id, _) in cast.sellers.items()}
    for row in _ok(client.get("/v1/reports/growth", params={"group_by": "seller"}, headers=operator)):
        name = names.get(row["group_id"])
        if name is None:
            continue  # a seller of the platform outside this story (the demo may run on a live one)
        sellers.add_row(name, str(row["orders"]), str(row["customers"]), format_minor(row["revenue"], "USD"),
                        format_minor(paid.get(row["group_id"], 0), "USD"))
    console.print(sellers)
    affiliates = Table("affiliate", "customers", "avg order value", "purchase frequency", "earned", "paid out",
                       "close ratio")
    by_id = {row["group_id"]: row for row in
             _ok(client.get("/v1/reports/growth", params={"group_by": "affiliate"}, headers=operator))}
    for name, (affiliate_id, headers) in cast.affiliates.items():
        row = by_id.get(affiliate_id)
        earned = sum(c["amount"]["amount"] - c["reversed"]["amount"]
                     for c in _ok(client.get("/v1/commissions", headers=headers, params={"limit": 200}))["items"])
        affiliates.add_row(
            name, str(row["customers"]) if row else "0",
            format_minor(row["average_order_value"], "USD") if row else "-",
            f"{row['purchase_frequency']:.2f}" if row else "-", format_minor(earned, "USD"),
            format_minor(paid.get(affiliate_id, 0), "USD"),
            f"{row['close_ratio']:.2f}" if row and row["close_ratio"] is not None else "-",
        )
    console.print(affiliates)
    platform = _ok(client.get("/v1/platform/balances", headers=operator))
    for row in platform:
        console.print(f"platform fees earned: {format_minor(row['fees'], row['currency'])}; "
                      f"paid out: {format_minor(row['paid_out'], row['currency'])}")
