"""Builders for the affiliates tests. Everything goes through the HTTP API (catalog endpoints for
sellers and products, ours for the rest), so a test reads like the parties' sessions."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer

_n = itertools.count(1)


def uniq(prefix: str) -> str:
    return f"{prefix}-{next(_n)}-{uuid.uuid4().hex[:6]}"


@dataclass
class Party:
    id: str
    headers: dict[str, str]
    email: str = ""
    referral_code: str = ""


@dataclass
class Item:
    product_id: str
    variant_id: str
    price: int


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


class Market:
    """The parties of a test: operator, sellers with programs and products, affiliates."""

    def __init__(self, client: TestClient, operator: dict[str, str]) -> None:
        self.client = client
        self.operator = operator
        self.visitor_cookies: dict[str, str] = {}  # visitor name -> its mk_vid cookie

    # --- sellers and catalog -------------------------------------------------------------------
    def seller(self, name: str = "Seller") -> Party:
        body = ok(self.client.post("/v1/sellers", json={"name": name, "email": f"{uniq('s')}@example.com"}), 201)
        seller_id = body["seller"]["id"]
        ok(self.client.post(f"/v1/sellers/{seller_id}/approve", headers=self.operator))
        return Party(seller_id, bearer(body["api_key"]))

    def product(self, seller: Party, *prices: int, currency: str = "USD", name: str = "Widget") -> list[Item]:
        variants = [{"sku": uniq("SKU"), "name": f"Level {i}", "price": {"amount": p, "currency": currency},
                     "stock": 100, "active": True} for i, p in enumerate(prices or (1000,))]
        product = ok(self.client.post("/v1/products", headers=seller.headers, json={
            "name": name, "description": "", "currency": currency, "variants": variants}), 201)
        ok(self.client.post(f"/v1/products/{product['id']}/publish", headers=seller.headers))
        return [Item(product["id"], v["id"], v["price"]["amount"]) for v in product["variants"]]

    def program(self, seller: Party, rules: dict[str, Any] | None = None, **terms: Any) -> str:
        program = ok(self.client.post("/v1/programs", headers=seller.headers,
                                      json={"requires_approval": False, **terms}), 201)
        if rules is not None:
            self.plan(seller, program["id"], rules)
        return str(program["id"])

    def plan(self, seller: Party, program_id: str, rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = ok(self.client.post(
            f"/v1/programs/{program_id}/plan-versions", headers=seller.headers, json={"rules": rules, **extra}), 201)
        return result

    # --- affiliates -----------------------------------------------------------------------------
    def apply(self, name: str = "Affiliate", *, referral_code: str | None = None,
              email: str | None = None) -> Party:
        email = email or f"{uniq('a')}@example.com"
        payload: dict[str, Any] = {"name": name, "email": email, "website": "https://partner.example",
                                   "audience": "makers", "markets": ["US"]}
        if referral_code:
            payload["referral_code"] = referral_code
        body = ok(self.client.post("/v1/affiliates", json=payload), 201)
        return Party(body["affiliate"]["id"], bearer(body["api_key"]), email, body["affiliate"]["referral_code"])

    def affiliate(self, name: str = "Affiliate", **kwargs: Any) -> Party:
        party = self.apply(name, **kwargs)
        ok(self.client.post(f"/v1/affiliates/{party.id}/approve", headers=self.operator))
        return party

    def join(self, affiliate: Party, program_id: str) -> dict[str, Any]:
        result: dict[str, Any] = ok(
            self.client.post(f"/v1/programs/{program_id}/memberships", headers=affiliate.headers, json={}), 201)
        return result

    def storefront(self, affiliate: Party, *items: Item, splits: list[tuple[Party, int]] | None = None,
                   currency: str = "USD") -> str:
        slug = uniq("shop")
        payload: dict[str, Any] = {"slug": slug, "name": "Shop", "currency": currency}
        if splits:
            payload["splits"] = [{"affiliate_id": p.id, "weight": w} for p, w in splits]
        ok(self.client.post("/v1/storefronts", headers=affiliate.headers, json=payload), 201)
        for item in items:
            ok(self.client.post(f"/v1/storefronts/{slug}/listings", headers=affiliate.headers,
                                json={"product_id": item.product_id}), 201)
        return slug

    def link(self, affiliate: Party, **payload: Any) -> dict[str, Any]:
        payload.setdefault("target_url", "https://partner.example/landing?x=1")
        result: dict[str, Any] = ok(self.client.post("/v1/referral-links", headers=affiliate.headers, json=payload),
                                    201)
        return result

    def click(self, code: str, visitor: str | None = None) -> str:
        """Follow a referral link as a browser; returns the attribution token from the redirect.
        Each call is a new visitor (its own user agent, no visitor cookie) unless `visitor` names
        one: the same name is the same browser (user agent and cookies kept)."""
        self.client.cookies.delete("mk_vid")
        if visitor is not None and visitor in self.visitor_cookies:
            self.client.cookies.set("mk_vid", self.visitor_cookies[visitor])
        agent = f"Mozilla/5.0 (X11; Linux x86_64) TestBrowser/{visitor or uniq('visitor')}"
        response = self.client.get(f"/r/{code}", follow_redirects=False, headers={"User-Agent": agent})
        if visitor is not None and response.cookies.get("mk_vid"):
            self.visitor_cookies[visitor] = str(response.cookies["mk_vid"])
        assert response.status_code == 302, response.text
        token = response.cookies.get("mk_ref")
        assert token and f"mk_ref={token}" in response.headers["location"]
        return str(token)

    def preview(self, headers: dict[str, str], items: list[tuple[Item, int]], *, status: int = 200,
                buyer: str = "buyer@example.com", **attribution: Any) -> Any:
        body = {"items": [{"variant_id": i.variant_id, "quantity": q} for i, q in items], "buyer_email": buyer,
                **attribution}
        return ok(self.client.post("/v1/commissions/preview", headers=headers, json=body), status)


@pytest.fixture
def market(client: TestClient, operator: dict[str, str]) -> Market:
    return Market(client, operator)


def shares(line: dict[str, Any]) -> dict[tuple[str, str], int]:
    """{(affiliate id, role): amount} of one preview line."""
    return {(c["affiliate_id"], c["role"]): c["amount"]["amount"] for c in line["commissions"]}
