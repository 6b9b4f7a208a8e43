"""A small builder that sets up a marketplace through the HTTP API, the way its users would:
sellers with products and programs, affiliates that join them, storefronts with listings."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from catalog.models import Variant
from kernel.db import session_scope
from tests.conftest import Backend, bearer

_n = itertools.count(1)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json()


@dataclass
class Party:
    id: str
    headers: dict[str, str]
    email: str


@dataclass
class World:
    client: TestClient
    operator: dict[str, str]
    sellers: dict[str, Party] = field(default_factory=dict)
    affiliates: dict[str, Party] = field(default_factory=dict)
    programs: dict[str, str] = field(default_factory=dict)  # seller name -> program id
    variants: dict[str, str] = field(default_factory=dict)  # sku -> variant id
    products: dict[str, str] = field(default_factory=dict)  # sku -> product id

    def seller(self, name: str, *, webhook_url: str | None = None) -> Party:
        email = f"{name.lower()}-{next(_n)}-{uuid.uuid4().hex[:4]}@sellers.example"
        body = ok(self.client.post("/v1/sellers", json={"name": name, "email": email}), 201)
        party = Party(body["seller"]["id"], bearer(body["api_key"]), email)
        ok(self.client.post(f"/v1/sellers/{party.id}/approve", headers=self.operator))
        if webhook_url:
            ok(self.client.patch("/v1/sellers/me", json={"webhook_url": webhook_url}, headers=party.headers))
        self.sellers[name] = party
        return party

    def product(
        self, seller: str, name: str, levels: list[tuple[str, str, int, int]], currency: str = "USD"
    ) -> str:
        """levels: (sku, level name, unit price in minor units, stock)."""
        body = ok(self.client.post("/v1/products", headers=self.sellers[seller].headers, json={
            "name": name, "description": f"{name} by {seller}", "category": "tools", "tags": ["demo"],
            "currency": currency,
            "variants": [{"sku": sku, "name": level, "price": {"amount": price, "currency": currency}, "stock": stock}
                         for sku, level, price, stock in levels],
        }), 201)
        ok(self.client.post(f"/v1/products/{body['id']}/publish", headers=self.sellers[seller].headers))
        for variant in body["variants"]:
            self.variants[variant["sku"]] = variant["id"]
            self.products[variant["sku"]] = body["id"]
        return str(body["id"])

    def program(
        self, seller: str, rules: dict[str, Any], *, holding_period_days: int = 30,
        attribution_window_days: int = 30, coupon_discount_bps: int = 0,
    ) -> str:
        headers = self.sellers[seller].headers
        program = ok(self.client.post("/v1/programs", headers=headers, json={
            "terms": f"{seller} partner terms", "requires_approval": False,
            "attribution_window_days": attribution_window_days, "holding_period_days": holding_period_days,
            "coupon_discount_bps": coupon_discount_bps,
        }), 201)
        ok(self.client.post(f"/v1/programs/{program['id']}/plan-versions", headers=headers,
                            json={"rules": rules, "note": "launch plan"}), 201)
        self.programs[seller] = program["id"]
        return str(program["id"])

    def affiliate(self, name: str, *, joins: list[str] = ()) -> Party:  # type: ignore[assignment]
        email = f"{name.lower()}-{next(_n)}-{uuid.uuid4().hex[:4]}@partners.example"
        body = ok(self.client.post("/v1/affiliates", json={"name": name, "email": email, "audience": "makers"}), 201)
        party = Party(body["affiliate"]["id"], bearer(body["api_key"]), email)
        ok(self.client.post(f"/v1/affiliates/{party.id}/approve", headers=self.operator))
        self.affiliates[name] = party
        for seller in joins:
            self.join(name, seller)
        return party

    def join(self, affiliate: str, seller: str) -> None:
        ok(self.client.post(f"/v1/programs/{self.programs[seller]}/memberships",
                            headers=self.affiliates[affiliate].headers, json={}), 201)

    def storefront(
        self, affiliate: str, slug: str, skus: list[str], *, currency: str = "USD",
        splits: list[tuple[str, int]] | None = None,
    ) -> str:
        headers = self.affiliates[affiliate].headers
        body: dict[str, Any] = {"slug": slug, "name": slug.title(), "currency": currency}
        if splits:
            body["splits"] = [{"affiliate_id": self.affiliates[a].id, "weight": w} for a, w in splits]
        ok(self.client.post("/v1/storefronts", headers=headers, json=body), 201)
        for product_id in dict.fromkeys(self.products[sku] for sku in skus):
            ok(self.client.post(f"/v1/storefronts/{slug}/listings", headers=headers,
                                json={"product_id": product_id}), 201)
        return slug


def cart(world: World, *items: tuple[str, int], email: str = "buyer@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "items": [{"variant_id": world.variants[sku], "quantity": qty} for sku, qty in items],
        "buyer": {"email": email, "name": "Bea Buyer"},
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"},
        **extra,
    }


def checkout(client: TestClient, slug: str | None, body: dict[str, Any], key: str | None = None) -> Any:
    path = f"/v1/storefronts/{slug}/orders" if slug else "/v1/checkout"
    return client.post(path, json=body, headers={"Idempotency-Key": key or f"key-{uuid.uuid4().hex}"})


def worked_example(client: TestClient, operator: dict[str, str], slug: str = "a-store") -> World:
    """The design's worked example: platform fee 1,000 bps; seller X's program pays 800 bps,
    seller Y's a flat 1.00 per unit; market maker A's storefront splits 70/30 with specialist S."""
    world = World(client, operator)
    world.seller("X")
    world.seller("Y")
    world.product("X", "Studio Suite", [("X-BASIC", "Basic", 1999, 100), ("X-PRO", "Pro", 4999, 100)])
    world.product("Y", "Cable Kit", [("Y-KIT", "Standard", 1250, 100)])
    world.program("X", {"default": {"bps": 800}})
    world.program("Y", {"default": {"flat": 100}})
    world.affiliate("A", joins=["X", "Y"])
    world.affiliate("S", joins=["X", "Y"])
    world.storefront("A", slug, ["X-PRO", "Y-KIT"], splits=[("A", 70), ("S", 30)])
    return world


def stock_of(env: Backend, world: World, sku: str) -> int:
    """The variant's stock as the database holds it now."""
    with session_scope(env.runtime.sessions) as session:
        return int(session.scalar(select(Variant.stock).where(Variant.id == uuid.UUID(world.variants[sku]))) or 0)
