"""The permission matrix, built from the OpenAPI: every operation x every role of every
organization kind (a person's key per role), plus no principal, a revoked key and a removed
member, each answer checked against the one table in kernel.permissions; and a person of
another organization, with this one's real ids, succeeds at nothing. Coarse on purpose:
"allowed" means the request got past authorization (any answer but 401/403: a 404 for a made-up
id, a 422 for an empty body); "refused" means 403 (401 without a valid key)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel import permissions
from kernel.auth import Role
from tests.affiliates.conftest import Market, Party
from tests.conftest import REPO_ROOT, Backend, bearer
from tests.people.conftest import affiliate_with_owner, member_key, ok, seller_with_owner


def _operations(client: TestClient) -> list[tuple[str, str, bool]]:
    """(method, path template, needs a principal) for every operation of the OpenAPI."""
    spec = client.get("/openapi.json").json()
    return [(method.upper(), path, bool(op.get("security")))
            for path, ops in spec["paths"].items() for method, op in ops.items()]


def _url(path: str, organization_id: str) -> str:
    """The path with made-up parameters (the caller's own organization for {organization_id},
    so the members routes answer for real)."""
    out = []
    for segment in path.split("/"):
        if segment == "{organization_id}":
            out.append(organization_id)
        elif segment.startswith("{"):
            out.append("no-such-slug" if segment in ("{slug}", "{code}") else str(uuid.uuid4()))
        else:
            out.append(segment)
    return "/".join(out)


def _call(client: TestClient, method: str, url: str, headers: dict[str, str], body: Any = None) -> int:
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PATCH", "PUT"):
        kwargs["json"] = {} if body is None else body
    status: int = client.request(method, url, **kwargs).status_code
    return status


def test_every_operation_that_needs_a_principal_is_in_the_permission_table_and_nothing_else(
    client: TestClient,
) -> None:
    secured = {permissions.operation(m, p) for m, p, needs in _operations(client) if needs}
    assert secured - set(permissions.OPERATION_PERMISSIONS) == set(), "operations missing from the table"
    assert set(permissions.OPERATION_PERMISSIONS) - secured == set(), "table entries for no (secured) operation"


def test_every_role_gets_exactly_what_the_permission_table_grants(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    affiliate = affiliate_with_owner(client, operator)
    buyer = ok(client.post("/v1/buyer-organizations", json={
        "name": "Acme Buying", "email": f"buyer-{uuid.uuid4().hex[:6]}@acme.example", "owner_name": "Ada",
        "password": "acme-buying-passphrase"}), 201)
    orgs = {Role.SELLER: seller.id, Role.AFFILIATE: affiliate.id, Role.OPERATOR: str(permissions.OPERATOR_TEAM_ID),
            Role.BUYER: buyer["organization"]["id"]}
    principals = [(Role(kind), role, bearer(member_key(env, Role(kind), uuid.UUID(orgs[Role(kind)]), role)[1]))
                  for kind, roles in permissions.ROLES.items() for role in roles]
    wrong: list[str] = []
    for method, path, needs in _operations(client):
        if not needs:
            continue
        needed = permissions.OPERATION_PERMISSIONS[permissions.operation(method, path)]
        for kind, role, headers in principals:
            status = _call(client, method, _url(path, orgs[kind]), headers)
            allowed = needed in permissions.ROLE_PERMISSIONS[kind][role]
            if (allowed and status in (401, 403)) or (not allowed and status != 403):
                wrong.append(f"{kind.value}:{role} {method} {path} -> {status} (table: "
                             f"{'allowed' if allowed else 'refused'})")
    assert wrong == [], "\n".join(wrong)


def test_no_key_a_revoked_key_and_a_removed_member_are_refused_everywhere(
    client: TestClient, env: Backend, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hundreds of refused keys from one address: the failed-auth throttle (tests/test_http_edge.py)
    # would answer 429 after the first twenty; here each answer must be the 401 itself.
    monkeypatch.setattr(env.runtime.settings, "auth_failures_per_minute", 0)
    seller = seller_with_owner(client, operator)
    person_id, removed_key = member_key(env, Role.SELLER, uuid.UUID(seller.id), "admin")
    revoked = ok(client.post("/v1/api-keys", headers=operator, json={"role": "seller", "subject_id": seller.id}), 201)
    ok(client.delete(f"/v1/api-keys/{revoked['id']}", headers=operator))
    assert client.delete(f"/v1/organizations/{seller.id}/members/{person_id}", headers=seller.key).status_code == 204
    callers = {"no principal": {}, "revoked key": bearer(revoked["key"]), "removed member": bearer(removed_key),
               "made-up key": bearer("mk_00000000_" + "x" * 32)}
    wrong = []
    for method, path, needs in _operations(client):
        if not needs:
            continue
        for name, headers in callers.items():
            status = _call(client, method, _url(path, seller.id), headers)
            if status != 401:
                wrong.append(f"{name} {method} {path} -> {status}")
    assert wrong == [], "\n".join(wrong)


def test_a_person_of_another_organization_finds_nothing_of_this_one(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    seller, other = seller_with_owner(client, operator), seller_with_owner(client, operator)
    _, key = member_key(env, Role.SELLER, uuid.UUID(other.id), "owner")
    stranger = bearer(key)
    org_paths = [(m, p) for m, p, needs in _operations(client) if needs and "{organization_id}" in p]
    assert org_paths
    for method, path in org_paths:
        body: dict[str, str] = {"role": "viewer"}
        if path.endswith("invitations"):
            body["email"] = "someone@example.com"
        status = _call(client, method, _url(path, seller.id), stranger, body)
        assert status == 404, f"{method} {path} -> {status}"
    assert seller.id not in client.get("/v1/audit-events", headers=stranger).text


def test_the_readme_documents_the_permission_table_the_code_enforces() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert permissions.markdown_table() in readme, "regenerate the README table: kernel.permissions.markdown_table()"


# Operations any organization's person may call on another's object, by design (not called below).
OPEN_ACROSS_ORGANIZATIONS = {
    "GET /v1/programs/{program_id}": "a program's terms are the directory every partner reads (any key)",
    "GET /v1/programs/{program_id}/charters": "a charter is read before joining (any key)",
    "POST /v1/programs/{program_id}/memberships": "any affiliate may apply to any program",
    "GET /v1/catalog/products/{product_id}": "the published catalog (any key)",
}


def test_a_person_of_another_organization_succeeds_at_nothing_on_this_ones_objects(
    client: TestClient, env: Backend, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every secured operation whose path names objects of one seller and one affiliate (their
    products, levels, programs, memberships, coupons, sub-orders, storefront, links, members), called
    with those real ids by the owner (a person) of another seller and of another affiliate: none
    succeeds (but what OPEN_ACROSS_ORGANIZATIONS lists, with why). Refused (403), not found (404), or
    an empty body refused before anything is read (422)."""
    monkeypatch.setattr(env.runtime.settings, "auth_failures_per_minute", 0)
    market = Market(client, operator)
    seller, affiliate = seller_with_owner(client, operator), affiliate_with_owner(client, operator)
    s, a = Party(seller.id, seller.key), Party(affiliate.id, affiliate.key)
    [item] = market.product(s, 1000)
    program = market.program(s, {"default": {"bps": 500}})
    membership = market.join(a, program)
    coupon = ok(client.post(f"/v1/programs/{program}/coupons", headers=s.headers,
                            json={"code": f"C{uuid.uuid4().hex[:6].upper()}", "affiliate_id": a.id}), 201)
    slug = market.storefront(a, item)
    link = market.link(a)
    order = ok(client.post(f"/v1/storefronts/{slug}/orders", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
        "items": [{"variant_id": item.variant_id, "quantity": 1}], "buyer": {"email": "b@example.com", "name": "B"},
        "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
                             "country": "US"}}), 201)
    paid = ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    ids = {"product_id": item.product_id, "variant_id": item.variant_id, "program_id": program,
           "membership_id": membership["id"], "coupon_id": coupon["id"], "order_id": order["id"],
           "sub_order_id": paid["sub_orders"][0]["id"], "slug": slug, "link_id": link["id"],
           "seller_id": seller.id, "affiliate_id": affiliate.id}
    strangers = {  # kind -> (this organization, its owner, a key of another organization's owner)
        kind: (org.id, org.owner_id, bearer(member_key(env, kind, uuid.UUID(other.id), "owner")[1]))
        for kind, org, other in ((Role.SELLER, seller, seller_with_owner(client, operator)),
                                 (Role.AFFILIATE, affiliate, affiliate_with_owner(client, operator)))
    }
    wrong, checked = [], 0
    for method, path, needs in _operations(client):
        names = re.findall(r"\{(\w+)\}", path)
        if not needs or not names:
            continue
        for kind, (organization_id, owner_id, stranger) in strangers.items():
            values = {**ids, "organization_id": organization_id, "person_id": owner_id or ""}
            if any(name not in values for name in names) or f"{method} {path}" in OPEN_ACROSS_ORGANIZATIONS:
                continue
            url = path
            for name in names:
                url = url.replace("{" + name + "}", values[name])
            status = _call(client, method, url, stranger)
            checked += 1
            if status not in (403, 404, 422):
                wrong.append(f"{kind.value} owner of another {kind.value}: {method} {path} -> {status}")
    assert wrong == [], "\n".join(wrong)
    assert checked > 100  # about 60 operations, each by both strangers
