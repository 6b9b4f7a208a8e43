"""`marketplace demo`: the many-to-many story, end to end, through the HTTP API (in-process).

Sellers and affiliates onboard, sellers list products with levels and run affiliate programs
(a tiered plan, a first-order bonus), a market maker sells from its storefront and splits with a
specialist, a partner shares a referral link, buyers order across sellers, pay, get their goods,
one asks for a partial refund, the holding period passes (the demo moves its own clock;
production has no way to), the operator runs a payout batch, and the ledger audit closes it.
Then a summary: who sold what, who earned what, who was paid what, and the growth figures.

The story starts in the past and ends now (`story_time`), so its timestamps never lie ahead of
the real clock when the same database is served afterwards. Its cast is the one `marketplace
serve` seeds (the same emails, SKUs and slugs): found on the platform, it is reused, so running the
demo again adds orders, not look-alike sellers and affiliates. Its tables are the run's own figures
(before / earned / paid out per payee from the ledger; sales, fees and commissions of its orders),
which add up; the growth figures come from the report, labelled with the report's period.

`seed_storefront_demo` is the smaller part `marketplace serve` loads into a fresh embedded
platform so there is something to browse, and `seed_order_history` gives it a few orders placed
and delivered weeks ago, whose holding period has passed: balances a payout batch can pay.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from affiliates.models import Affiliate, Program
from catalog.models import Seller, Variant
from kernel import auth
from kernel.auth import Role
from kernel.clock import clock
from kernel.db import session_scope
from kernel.money import format_minor
from kernel.runtime import Runtime, get_runtime


class DemoError(RuntimeError):
    """A step of the story answered differently than the platform promises."""


def _ok(response: Any, status: int = 200) -> Any:
    if response.status_code != status:
        raise DemoError(f"{response.request.method} {response.request.url.path}: "
                        f"{response.status_code} {response.text[:300]}")
    return response.json()


def _bank_reference(prefix: str, entity_id: str) -> str:
    """A demo bank reference that differs for every payee: eight digits from the random tail of its
    id (the leading characters of time-ordered ids are the same for everyone created together)."""
    digits = f"{(uuid.UUID(entity_id).int & ((1 << 62) - 1)) % 10**8:08d}"
    return f"{prefix} {digits[:4]} {digits[4:]}"


@dataclass
class Cast:
    """Who is who in the story: name -> (id, auth headers). Each member is looked up before it is
    created (by its email, SKUs, program, storefront slug), so a second run, or the demo after
    `marketplace serve` seeded the same cast, reuses it instead of adding look-alikes."""

    client: TestClient
    operator: dict[str, str]
    run: str
    password: str | None = None  # when set, each new seller and affiliate gets an owner who logs in with it
    sellers: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    affiliates: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)
    programs: dict[str, str] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # members found on the platform from an earlier run

    def email(self, name: str) -> str:
        return f"{name.lower().replace(' ', '.')}+{self.run}@example.com"

    def _owner(self) -> dict[str, str]:
        return {"password": self.password, "owner_name": "Demo owner"} if self.password else {}

    def _scalars(self, stmt: Any) -> list[Any]:
        with session_scope(get_runtime().sessions) as session:
            return list(session.execute(stmt).all())

    def _key_for(self, role: Role, subject_id: str) -> dict[str, str]:
        """A fresh key for a member found from an earlier run (keys are shown once, so the old
        one is gone): the operator issues it, as for any payee."""
        issued = _ok(self.client.post("/v1/api-keys", headers=self.operator, json={
            "role": role.value, "subject_id": subject_id, "name": f"demo-{self.run}"}), 201)
        return {"Authorization": f"Bearer {issued['key']}"}

    def seller(self, name: str, products: list[tuple[str, list[tuple[str, str, int]]]], plan: dict[str, Any],
               holding_days: int = 30) -> None:
        found = self._scalars(select(Seller.id).where(Seller.email == self.email(name)))
        if found:
            seller_id = str(found[0][0])
            headers = self._key_for(Role.SELLER, seller_id)
            self.reused.append(name)
        else:
            applied = _ok(self.client.post("/v1/sellers", json={
                "name": name, "email": self.email(name), "website": f"https://{name.split()[0].lower()}.example",
                "description": f"{name}: quality goods", **self._owner()}), 201)
            seller_id, headers = applied["seller"]["id"], {"Authorization": f"Bearer {applied['api_key']}"}
            _ok(self.client.post(f"/v1/sellers/{seller_id}/approve", headers=self.operator))
            _ok(self.client.post("/v1/sellers/me/payout-account", headers=headers,
                                 json={"bank_reference": _bank_reference("DE89 3704 0044", seller_id)}))
            _ok(self.client.post(f"/v1/sellers/{seller_id}/payout-account/verify", headers=self.operator))
        self.sellers[name] = (seller_id, headers)
        listed = {sku: (str(variant_id), str(product_id)) for sku, variant_id, product_id in self._scalars(
            select(Variant.sku, Variant.id, Variant.product_id).where(Variant.seller_id == uuid.UUID(seller_id)))}
        for product_name, levels in products:
            if all(f"{sku}-{self.run}" in listed for sku, _, _ in levels):
                for sku, _, _ in levels:
                    self.variants[sku], self.products[sku] = listed[f"{sku}-{self.run}"]
                continue
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
        program = self._scalars(select(Program.id).where(Program.seller_id == uuid.UUID(seller_id)))
        if program:
            self.programs[name] = str(program[0][0])
            return
        created = _ok(self.client.post("/v1/programs", headers=headers, json={
            "terms": f"Sell {name} and earn", "requires_approval": False, "attribution_window_days": 30,
            "holding_period_days": holding_days, "coupon_discount_bps": 500}), 201)
        _ok(self.client.post(f"/v1/programs/{created['id']}/plan-versions", headers=headers,
                             json={"rules": plan, "note": "launch"}), 201)
        self.programs[name] = created["id"]

    def affiliate(self, name: str, joins: list[str], audience: str) -> None:
        found = self._scalars(select(Affiliate.id).where(Affiliate.email == self.email(name)))
        if found:
            affiliate_id = str(found[0][0])
            headers = self._key_for(Role.AFFILIATE, affiliate_id)
            self.reused.append(name)
        else:
            applied = _ok(self.client.post("/v1/affiliates", json={
                "name": name, "email": self.email(name), "audience": audience, "markets": ["US"],
                **self._owner()}), 201)
            affiliate_id, headers = applied["affiliate"]["id"], {"Authorization": f"Bearer {applied['api_key']}"}
            _ok(self.client.post(f"/v1/affiliates/{affiliate_id}/approve", headers=self.operator))
            _ok(self.client.post("/v1/affiliates/me/payout-account", headers=headers,
                                 json={"bank_reference": _bank_reference("GB29 NWBK 6016", affiliate_id)}))
            _ok(self.client.post(f"/v1/affiliates/{affiliate_id}/payout-account/verify", headers=self.operator))
        self.affiliates[name] = (affiliate_id, headers)
        for seller in joins:
            joined = self.client.post(f"/v1/programs/{self.programs[seller]}/memberships", headers=headers, json={})
            if joined.status_code != 409:  # 409: a member since an earlier run
                _ok(joined, 201)

    def storefront(self, owner: str, slug: str, skus: list[str], splits: list[tuple[str, int]] | None = None) -> str:
        headers = self.affiliates[owner][1]
        slug = f"{slug}-{self.run}"
        if self.client.get(f"/v1/storefronts/{slug}").status_code == 200:
            return slug
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

    def name_of(self, entity_id: str) -> str:
        for group in (self.sellers, self.affiliates):
            for name, (member_id, _) in group.items():
                if member_id == entity_id:
                    return name
        return entity_id


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


def seed_storefront_demo(client: TestClient, operator: dict[str, str], run: str = "demo",
                         password: str | None = None) -> Cast:
    """Sellers with products and programs, affiliates, and two storefronts to browse; with
    `password`, each seller and affiliate has an owner who logs in with it (their email)."""
    cast = Cast(client, operator, run, password)
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
    run = "demo"  # the cast `marketplace serve` seeds: a second run reuses it instead of adding look-alikes
    with TestClient(create_app(runtime=runtime, celery=celery)) as client, story_time(days_ago=HOLDING_PASSES + 1):
        operator = operator_headers(runtime)
        console.rule("[bold]1. Sellers, products, programs, affiliates, storefronts")
        cast = seed_storefront_demo(client, operator, run)
        makers, outdoor = f"makers-guild-{run}", f"outdoor-alliance-{run}"
        console.print(f"Sellers {_and(list(cast.sellers))}, each with an affiliate program.")
        console.print(f"Affiliates {_and(list(cast.affiliates))}.")
        console.print(f"Storefronts [bold]{makers}[/] (Makers Guild's; it shares its commissions 70/30 with "
                      f"Studio Specialists) and [bold]{outdoor}[/] (Outdoor Alliance's).")
        if cast.reused:
            console.print(f"[dim]Already on this platform from an earlier run, and reused: {_and(cast.reused)}.[/]")
        before = _payee_balances(client, operator, cast)

        console.rule("[bold]2. Referral clicks and orders across sellers")
        link = _ok(client.post("/v1/referral-links", headers=cast.affiliates["Outdoor Alliance"][1],
                               json={"target_url": "https://trailhead.example/packs"}), 201)
        clicked = client.get(f"/r/{link['code']}", follow_redirects=False)
        token = clicked.headers["location"].split("mk_ref=")[1].split("&")[0]
        placed = [
            ("Ada", makers, cast.order(makers, "Ada", [("LUMEN-PRO", 1), ("NW-CABLE", 2)])),
            ("Ada", makers, cast.order(makers, "Ada", [("NW-HP", 1)])),
            ("Grace", makers, cast.order(makers, "Grace", [("LUMEN-PRO", 1), ("NW-HP", 1)])),
            ("Linus", makers, cast.order(makers, "Linus", [("LUMEN-PRO", 2)])),
            ("Grace", outdoor, cast.order(outdoor, "Grace", [("TH-PACK-S", 1), ("NW-CABLE", 1)])),
            ("Margaret", "a referral link", cast.order(None, "Margaret", [("TH-PACK-L", 1)], token=token)),
        ]
        orders = [order for _, _, order in placed]
        _print_orders(placed, cast, console)

        console.rule("[bold]3. Fulfilment, a partial refund, the holding period passing")
        for order in orders:
            cast.fulfil(order)
        console.print(f"Every seller accepted, shipped and delivered its part of the {len(orders)} orders.")
        cable = next(line for line in orders[0]["lines"] if line["sku"].startswith("NW-CABLE"))
        refund = _ok(client.post(f"/v1/orders/{orders[0]['id']}/refunds", headers=operator, json={
            "lines": [{"order_line_id": cable["id"], "quantity": 1}], "reason": "arrived damaged"}), 201)
        console.print(f"Ada sent one cable back (arrived damaged): {_usd(refund['amount']['amount'])} USD refunded; "
                      "the platform fee, the commission and the seller's share of it are reversed.")
        clock.advance(timedelta(days=HOLDING_PASSES))
        released = celery.tasks["orders.release_matured"].apply().get()
        console.print(f"{HOLDING_PASSES} days later the return window and the holding periods are over: "
                      f"{released['seller_shares']} seller shares and {released['commissions']} commissions "
                      "became available to pay out.")

        console.rule("[bold]4. Payout batch")
        batch_paid = _payout(client, operator, cast, console)
        after = _payee_balances(client, operator, cast)
        orders = [_ok(client.get(f"/v1/orders/{order['id']}", headers=operator)) for order in orders]
        _summary(client, cast, operator, orders, before, after, batch_paid, console)
    console.rule("[bold]6. Ledger audit")
    from marketplace.ledger_report import run_ledger_audit

    return run_ledger_audit(runtime)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _usd(amount: int) -> str:
    """Minor units as a table cell (the tables name their currency once, in the title)."""
    return format_minor(amount, "USD").removesuffix(" USD")


def _table(title: str, *columns: str, text: tuple[str, ...] = (), footer: bool = True) -> Table:
    """A table that fits 80 columns: no vertical rules; the first column (a name) and the figures
    never wrap, the `text` columns do; a totals footer."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_footer=footer, title_justify="left", pad_edge=False)
    for n, name in enumerate(columns):
        table.add_column(name, justify="left" if n == 0 or name in text else "right", no_wrap=name not in text)
    return table


def _payee_balances(client: TestClient, operator: dict[str, str], cast: Cast) -> dict[str, int]:
    """Every cast member's USD balance (pending + available + in transit), from the ledger."""
    totals = {}
    for owner_type, group in (("seller", cast.sellers), ("affiliate", cast.affiliates)):
        for member_id, _ in group.values():
            balances = _ok(client.get("/v1/balances", headers=operator,
                                      params={"owner_type": owner_type, "owner_id": member_id}))["balances"]
            totals[member_id] = sum(b["pending"] + b["available"] + b["in_transit"]
                                    for b in balances if b["currency"] == "USD")
    return totals


def _print_orders(placed: list[tuple[str, str, Any]], cast: Cast, console: Console) -> None:
    table = _table("Orders (USD)", "buyer", "came through", "sellers", "total", text=("came through", "sellers"))
    for buyer, source, order in placed:
        sellers = sorted({cast.name_of(sub["seller_id"]) for sub in order["sub_orders"]})
        table.add_row(buyer, source, ", ".join(sellers), _usd(order["total"]["amount"]))
    table.columns[0].footer = f"{len(placed)} orders"
    table.columns[-1].footer = _usd(sum(order["total"]["amount"] for _, _, order in placed))
    console.print(table)
    console.print(f"Each was paid and routed into one sub-order per seller: "
                  f"{sum(len(order['sub_orders']) for _, _, order in placed)} sub-orders.")


def _payout(client: TestClient, operator: dict[str, str], cast: Cast, console: Console) -> dict[str, int]:
    """Preview, create, approve and run a USD payout batch with a progress bar; what it paid whom."""
    from payouts.cli import run_batch_with_progress

    preview = _ok(client.post("/v1/payout-batches", headers=operator, json={"currency": "USD", "preview": True}))
    console.print(f"Preview: {len(preview['payees'])} payees to pay, {_usd(preview['total']['amount'])} USD.")
    for line in preview["below_minimum"] + preview.get("blocked", []):
        console.print(f"  {line['name']} keeps {format_minor(line['amount']['amount'], 'USD')} for a later "
                      f"payout: {line['reason']}.")
    batch = _ok(client.post("/v1/payout-batches", headers=operator, json={"currency": "USD"}), 201)
    _ok(client.post(f"/v1/payout-batches/{batch['id']}/approve", headers=operator))
    run_batch_with_progress(uuid.UUID(batch["id"]), console, label="paying", totals=False)
    paid: dict[str, int] = {}
    cursor = None
    while True:  # every page: the batch pays every payee of the platform, not only the demo's
        page = _ok(client.get(f"/v1/payout-batches/{batch['id']}/items", headers=operator,
                              params={"limit": 200, **({"cursor": cursor} if cursor else {})}))
        for item in page["items"]:
            if item["status"] == "paid":
                paid[item["owner_id"]] = item["amount"]["amount"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    done = _ok(client.get(f"/v1/payout-batches/{batch['id']}", headers=operator))
    console.print(f"The batch is {done['status']}: {len(paid)} payees paid "
                  f"{_usd(sum(paid.values()))} USD on the {done['rail']} rail.")
    members = {member_id for member_id, _ in [*cast.sellers.values(), *cast.affiliates.values()]}
    others = {owner: amount for owner, amount in paid.items() if owner not in members}
    if others:
        console.print(f"[dim]({len(others)} of them, {_usd(sum(others.values()))} USD, are payees of this platform "
                      "outside the demo's cast.)[/]")
    return paid


def _summary(
    client: TestClient, cast: Cast, operator: dict[str, str], orders: list[Any], before: dict[str, int],
    after: dict[str, int], paid: dict[str, int], console: Console,
) -> None:
    """Two money tables that add up (this run's orders, then each payee's balance), and the growth
    figures of the affiliates from the report, labelled with the report's own period."""
    console.rule("[bold]5. Who sold, earned and was paid what")
    earned = {member: after[member] + paid.get(member, 0) - before[member] for member in before}
    sales: dict[str, int] = defaultdict(int)
    commissions: dict[str, int] = defaultdict(int)
    for order in orders:
        seller_of_sub = {share["id"]: share["seller_id"] for share in order["shares"]}
        seller_of_line = {line["id"]: seller_of_sub[line["sub_order_id"]] for line in order["lines"]}
        for share in order["shares"]:
            sales[share["seller_id"]] += share["amount"]["amount"] - share["refunded"]["amount"]
        for commission in order["commissions"]:
            commissions[seller_of_line[commission["order_line_id"]]] += (
                commission["amount"]["amount"] - commission["reversed"]["amount"])

    sold = _table("This run's orders by seller (USD, net of refunds)",
                  "seller", "sales", "platform fee", "commissions", "seller net")
    totals = [0, 0, 0, 0]
    for name, (seller_id, _) in cast.sellers.items():
        net = earned[seller_id]
        row = [sales[seller_id], sales[seller_id] - commissions[seller_id] - net, commissions[seller_id], net]
        totals = [t + v for t, v in zip(totals, row, strict=True)]
        sold.add_row(name, *map(_usd, row))
    for column, footer in zip(sold.columns, ["total", *map(_usd, totals)], strict=True):
        column.footer = footer
    console.print(sold)
    affiliates_earned = sum(earned[affiliate_id] for affiliate_id, _ in cast.affiliates.values())
    refunded = sum(order["refunded"]["amount"] for order in orders)
    console.print(f"Buyers paid {_usd(totals[0])} USD (net of {_usd(refunded)} refunded): {_usd(totals[3])} to the "
                  f"sellers, {_usd(affiliates_earned)} in commissions to the affiliates and {_usd(totals[1])} "
                  "platform fee.")

    balances = _table("Balances (USD): before + earned - paid out = balance", "payee", "before", "earned",
                      "paid out", "balance")
    totals = [0, 0, 0, 0]
    for name, member_id in [(n, i) for n, (i, _) in [*cast.sellers.items(), *cast.affiliates.items()]]:
        row = [before[member_id], earned[member_id], paid.get(member_id, 0), after[member_id]]
        totals = [t + v for t, v in zip(totals, row, strict=True)]
        balances.add_row(name, *map(_usd, row))
    for column, footer in zip(balances.columns, ["total", *map(_usd, totals)], strict=True):
        column.footer = footer
    console.print(balances)

    growth = _table("Affiliates' growth figures (GET /v1/reports/growth, last 90 days)",
                    "affiliate", "customers", "avg order", "orders/customer", "close ratio", footer=False)
    rows = {row["group_id"]: row for row in
            _ok(client.get("/v1/reports/growth", params={"group_by": "affiliate"}, headers=operator))
            if row["currency"] == "USD"}
    for name, (affiliate_id, _) in cast.affiliates.items():
        figures = rows.get(affiliate_id)
        if figures is None:
            growth.add_row(name, "0", "-", "-", "-")
            continue
        growth.add_row(name, str(figures["customers"]), _usd(figures["average_order_value"]),
                       f"{figures['purchase_frequency']:.2f}",
                       f"{figures['close_ratio']:.2f}" if figures["close_ratio"] is not None else "-")
    console.print(growth)
    console.print("[dim]Studio Specialists earns through Makers Guild's storefront split, so its orders count "
                  "as Makers Guild's.[/]")
