"""The buyer-data matrix, through the API and the webhook payloads: each buyer field x each viewer
(every seller role, every role of the affiliate that brought the buyer, another affiliate, every
operator role) x the buyer's consents x two versions of the seller program's charter. The
expectations are written here from the charter's rules, apart from the one policy that enforces
them (orders.service.buyer_policy); every read of contact data lands in the access log."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel import permissions
from kernel.auth import Role
from kernel.db import session_scope
from kernel.outbound import WebhookDelivery
from tests.conftest import Backend, bearer
from tests.orders.world import World, cart, checkout, ok
from tests.people.conftest import member_key

FIELDS = ("name", "email", "phone", "shipping_address")
V1 = {"seller_contact_purposes": ["partner_contact"], "affiliate_contact_purposes": [], "affiliate_sees_name": False}
V2 = {"seller_contact_purposes": ["marketing"], "affiliate_contact_purposes": ["partner_contact", "marketing"],
      "affiliate_sees_name": True}
CONSENTS = {"partner": {"partner_contact": True}, "marketing": {"marketing": True}, "none": None}


def _expected(kind: str, role: str, consents: dict[str, bool] | None, terms: dict[str, Any]) -> dict[str, str | None]:
    """The charter's rules, per field: "full", "masked" or None (not shown)."""
    given = {"order_updates": True, "marketing": False, "partner_contact": False, **(consents or {})}
    if kind == "operator":
        if role in ("admin", "support"):
            return dict.fromkeys(FIELDS, "full")
        return {"name": "full", "email": "masked", "phone": "masked", "shipping_address": None}
    if kind == "seller":
        contact = role in ("owner", "admin", "fulfilment") and any(given[p] for p in terms["seller_contact_purposes"])
        return {"name": "full", "shipping_address": "full", "email": "full" if contact else None,
                "phone": "full" if contact else None}
    if kind == "affiliate":
        contact = role in ("owner", "admin", "marketing") and any(
            given[p] for p in terms["affiliate_contact_purposes"])
        return {"name": "full" if terms["affiliate_sees_name"] else "masked",
                "email": "full" if contact else "masked", "phone": "full" if contact else "masked",
                "shipping_address": None}
    return dict.fromkeys(FIELDS)  # another affiliate: the order is not in its list


def _seen(buyer: dict[str, Any] | None, original: dict[str, Any]) -> dict[str, str | None]:
    if buyer is None:
        return dict.fromkeys(FIELDS)
    return {f: None if buyer[f] is None else "full" if buyer[f] == original[f] else "masked" for f in FIELDS}


class Market:
    def __init__(self, client: TestClient, operator: dict[str, str], env: Backend, webhook_url: str) -> None:
        self.client, self.env, self.operator = client, env, operator
        w = self.world = World(client, operator)
        self.x = w.seller("X", webhook_url=webhook_url)
        w.product("X", "Studio Suite", [("X-PRO", "Pro", 4999, 100)])
        self.program = w.program("X", {"default": {"bps": 800}})
        self.a = w.affiliate("A", joins=["X"])  # joined before any charter: the default terms
        w.storefront("A", "a-store", ["X-PRO"])
        self.b_party = w.affiliate("B")

    def publish(self, terms: dict[str, Any]) -> int:
        body = ok(self.client.post(f"/v1/programs/{self.program}/charters", headers=self.x.headers,
                                   json={"terms": terms, "text": "How we share buyers' data"}), 201)
        return int(body["version"])

    def accept(self, version: int) -> None:
        ok(self.client.post(f"/v1/programs/{self.program}/charter-acceptances", headers=self.a.headers,
                            json={"version": version}), 201)

    def order(self, consents: dict[str, bool] | None) -> dict[str, Any]:
        body = cart(self.world, ("X-PRO", 1), email=f"b-{uuid.uuid4().hex[:6]}@example.com", consents=consents)
        body["buyer"]["phone"] = "+44 20 7946 0000"
        order = ok(checkout(self.client, "a-store", body), 201)
        ok(self.client.post(f"/v1/orders/{order['id']}/mark-paid", headers=self.operator))
        original = {"name": body["buyer"]["name"], "email": body["buyer"]["email"], "phone": body["buyer"]["phone"],
                    "shipping_address": {**{"line2": None, "region": None}, **body["shipping_address"]}}
        return {"id": order["id"], "sub": order["sub_orders"][0]["id"], "original": original}


def _viewers(env: Backend, m: Market) -> list[tuple[str, str, dict[str, str]]]:
    out = []
    for kind, org, roles in ((Role.SELLER, m.x.id, permissions.SELLER_ROLES),
                             (Role.AFFILIATE, m.a.id, permissions.AFFILIATE_ROLES),
                             (Role.OPERATOR, str(permissions.OPERATOR_TEAM_ID), permissions.OPERATOR_ROLES)):
        for role in roles:
            out.append((kind.value, role, bearer(member_key(env, kind, uuid.UUID(org), role)[1])))
    out.append(("other affiliate", "owner", m.b_party.headers))
    return out


def _read(client: TestClient, kind: str, headers: dict[str, str], order: dict[str, Any]) -> dict[str, Any] | None:
    if kind == "seller":
        return dict(ok(client.get(f"/v1/sub-orders/{order['sub']}", headers=headers))["buyer"])
    if kind == "operator":
        return dict(ok(client.get(f"/v1/orders/{order['id']}", headers=headers))["buyer"])
    listed = {o["id"]: o["buyer"] for o in ok(client.get("/v1/affiliates/me/orders", headers=headers))}
    return listed.get(order["id"])


def _matrix(client: TestClient, viewers: list[tuple[str, str, dict[str, str]]], orders: dict[str, dict[str, Any]],
            terms: dict[str, Any]) -> list[str]:
    wrong = []
    for kind, role, headers in viewers:
        for consent, order in orders.items():
            seen = _seen(_read(client, kind, headers, order), order["original"])
            wanted = _expected(kind, role, CONSENTS[consent], terms)
            if seen != wanted:
                wrong.append(f"{kind}:{role} consent={consent}: saw {seen}, charter says {wanted}")
    return wrong


def test_every_buyer_field_for_every_viewer_follows_the_charter_version_accepted_and_the_buyers_consents(
    client: TestClient, operator: dict[str, str], env: Backend, webhook_receiver: str
) -> None:
    m = Market(client, operator, env, webhook_receiver)
    v1 = m.publish(V1)
    m.accept(v1)
    orders = {name: m.order(consents) for name, consents in CONSENTS.items()}
    viewers = _viewers(env, m)
    assert _matrix(client, viewers, orders, V1) == []

    # The order.created webhook is the seller's own system: the owner's view under v1.
    with session_scope(env.runtime.sessions) as session:
        payloads = {d.payload["data"]["order_id"]: d.payload["data"]["buyer"] for d in session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_type == "order.created"))}
    for consent, order in orders.items():
        assert _seen(payloads[order["id"]], order["original"]) == _expected("seller", "owner", CONSENTS[consent], V1)

    v2 = m.publish(V2)
    assert _matrix(client, viewers, orders, V1) == []  # v2 governs only once A accepts it
    m.accept(v2)
    assert _matrix(client, viewers, orders, V2) == []
    history = ok(client.get(f"/v1/programs/{m.program}/charters", headers=m.a.headers))
    assert [(c["version"], c["terms"]["affiliate_sees_name"]) for c in history] == [(1, False), (2, True)]


def test_joining_a_program_with_a_charter_accepts_its_current_version_and_every_contact_read_is_logged(
    client: TestClient, operator: dict[str, str], env: Backend, webhook_receiver: str
) -> None:
    m = Market(client, operator, env, webhook_receiver)
    version = m.publish(V1)
    path = f"/v1/programs/{m.program}/memberships"
    refused = client.post(path, headers=m.b_party.headers, json={})
    assert refused.status_code == 422 and refused.json()["type"].endswith("charter-not-accepted")
    assert client.post(path, headers=m.b_party.headers, json={"accept_charter_version": 9}).status_code == 404
    ok(client.post(path, headers=m.b_party.headers, json={"accept_charter_version": version}), 201)
    stale = client.post(f"/v1/programs/{m.program}/charter-acceptances", headers=m.a.headers, json={"version": 1})
    assert stale.status_code == 201  # the current version
    m.publish(V2)
    old = client.post(f"/v1/programs/{m.program}/charter-acceptances", headers=m.a.headers, json={"version": 1})
    assert old.status_code == 422  # no longer the current version

    order = m.order({"partner_contact": True})
    _, key = member_key(env, Role.SELLER, uuid.UUID(m.x.id), "fulfilment")
    ok(client.get(f"/v1/sub-orders/{order['sub']}", headers=bearer(key)))
    _, catalog_key = member_key(env, Role.SELLER, uuid.UUID(m.x.id), "catalog")
    ok(client.get(f"/v1/sub-orders/{order['sub']}", headers=bearer(catalog_key)))
    log = ok(client.get(f"/v1/buyer-data-access?order_id={order['id']}", headers=operator))
    reads = sorted((r["viewer_kind"], r["viewer_role"], r["channel"], tuple(r["fields"]), r["purpose"]) for r in log)
    assert reads == [  # the operator's mark-paid answer shows the buyer too
        ("operator", "admin", "api", ("email", "phone", "shipping_address"), "operations"),
        ("seller", "catalog", "api", ("shipping_address",), "fulfilment"),
        ("seller", "fulfilment", "api", ("email", "phone", "shipping_address"), "partner_contact"),
        ("seller", "owner", "webhook", ("email", "phone", "shipping_address"), "partner_contact"),
    ]
    assert len(ok(client.get("/v1/buyer-data-access", headers=m.x.headers))) == 3  # the seller's own team's reads
    assert client.get("/v1/buyer-data-access", headers=bearer(key)).status_code == 403  # fulfilment: not an admin
    assert ok(client.get("/v1/buyer-data-access", headers=m.world.sellers["X"].headers))
