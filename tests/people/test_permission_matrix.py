"""The permission matrix, built from the OpenAPI: every operation x every role of every
organization kind (a person's key per role), plus no principal, a revoked key and a removed
member, each answer checked against the one table in kernel.permissions. Coarse on purpose:
"allowed" means the request got past authorization (any answer but 401/403: a 404 for a made-up
id, a 422 for an empty body); "refused" means 403 (401 without a valid key)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel import permissions
from kernel.auth import Role
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
