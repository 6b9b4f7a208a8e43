"""Relationship contacts at buyer organizations (orders.service.contacts): each team reads its own;
a seller's and an affiliate's teams read each other's only under a charter that shares them."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from kernel.auth import Role
from tests.conftest import Backend, bearer
from tests.orders.world import World, ok
from tests.people.conftest import member_key


def _contact(client: TestClient, headers: dict[str, str], org: str, name: str, **extra: Any) -> dict[str, Any]:
    return dict(ok(client.post("/v1/relationship-contacts", headers=headers, json={
        "buyer_organization_id": org, "name": name, "buying_role": "decision_maker", "influence": 5, **extra}), 201))


def test_contacts_are_the_teams_own_and_shared_across_a_charter_only_when_it_says_so(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    w = World(client, operator)
    x = w.seller("X")
    program = w.program("X", {"default": {"bps": 800}})
    a = w.affiliate("A", joins=["X"])
    other = w.affiliate("B")
    org = ok(client.post("/v1/buyer-organizations", json={
        "name": "Acme", "email": "ada@acme.example", "owner_name": "Ada", "password": "acme-buying-passphrase"}),
        201)["organization"]["id"]
    cfo = _contact(client, x.headers, org, "Cleo CFO", email="cleo@acme.example", notes="signs above 10k")
    _contact(client, x.headers, org, "Ivan Intern", buying_role="user", influence=1, reports_to_id=cfo["id"])
    _contact(client, a.headers, org, "Gail Gatekeeper", buying_role="gatekeeper", influence=3)

    def names(headers: dict[str, str]) -> list[str]:
        return sorted(c["name"] for c in ok(client.get(f"/v1/relationship-contacts?buyer_organization_id={org}",
                                                       headers=headers)))

    assert names(x.headers) == ["Cleo CFO", "Ivan Intern"] and names(a.headers) == ["Gail Gatekeeper"]
    charter = ok(client.post(f"/v1/programs/{program}/charters", headers=x.headers,
                             json={"terms": {"share_relationship_contacts": True}}), 201)
    assert names(x.headers) == ["Cleo CFO", "Ivan Intern"]  # not shared until A accepts
    ok(client.post(f"/v1/programs/{program}/charter-acceptances", headers=a.headers,
                   json={"version": charter["version"]}), 201)
    assert names(x.headers) == names(a.headers) == ["Cleo CFO", "Gail Gatekeeper", "Ivan Intern"]
    assert names(other.headers) == []
    _, catalog = member_key(env, Role.SELLER, uuid.UUID(x.id), "catalog")
    assert client.get("/v1/relationship-contacts", headers=bearer(catalog)).status_code == 403  # by role
    assert client.get("/v1/relationship-contacts", headers=operator).status_code == 403
    missing = client.post("/v1/relationship-contacts", headers=x.headers, json={
        "buyer_organization_id": str(uuid.uuid4()), "name": "N", "buying_role": "user", "influence": 1})
    assert missing.status_code == 404
