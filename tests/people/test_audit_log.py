"""The audit log: every write that succeeds leaves one event naming who (person or organization
key), for which organization, what (operation, object, fields sent without secrets) and from
where; nothing for reads and failures; append-only; operators read everything, owners and admins
their own organization; filters, cursor pages, CSV."""

from __future__ import annotations

import csv
import io
import uuid
from ipaddress import ip_network
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from kernel.audit_log import AuditEvent, AuditLogAppendOnly
from kernel.auth import Role
from kernel.db import session_scope
from kernel.runtime import Runtime
from marketplace.app import create_app
from tests.conftest import Backend, bearer
from tests.people.conftest import (
    PASSWORD,
    key_for_password,
    member_key,
    ok,
    seller_with_owner,
)

INVITE = "POST /v1/organizations/{organization_id}/invitations"


def events(client: TestClient, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(client.get("/v1/audit-events", headers=headers, params=params))["items"]
    return items


def test_a_write_records_the_person_key_organization_object_fields_and_origin(
    client: TestClient, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    owner = key_for_password(client, seller.owner_email or "", seller.id)
    owner_key_id = ok(client.get("/v1/me", headers=owner))["key_id"]
    ok(client.post(f"/v1/organizations/{seller.id}/invitations", json={"email": "Kim@Example.com", "role": "catalog"},
                   headers={**owner, "X-Request-ID": "req-invite-1", "User-Agent": "audit-test/1.0"}), 201)

    [event] = events(client, owner, action=INVITE)
    assert event["actor_type"] == "person" and event["person_id"] == seller.owner_id
    assert event["api_key_id"] == owner_key_id
    assert (event["organization_kind"], event["organization_id"]) == ("seller", seller.id)
    invitation_id = ok(client.get(f"/v1/organizations/{seller.id}/invitations", headers=owner))[0]["id"]
    assert (event["object_type"], event["object_id"]) == ("invitation", invitation_id)  # what the create made
    assert event["changes"] == {"email": "Kim@Example.com", "role": "catalog"}
    assert (event["request_id"], event["user_agent"], event["address"]) == ("req-invite-1", "audit-test/1.0",
                                                                           "testclient")

    ok(client.patch("/v1/sellers/me", headers=seller.key, json={"description": "Now with more tools"}))
    [patch] = events(client, operator, action="PATCH /v1/sellers/me")
    assert patch["actor_type"] == "organization_key" and patch["person_id"] is None
    assert (patch["object_type"], patch["object_id"]) == ("seller", seller.id)


def test_behind_a_trusted_proxy_the_origin_is_the_forwarded_client(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    settings = env.runtime.settings.model_copy(update={"trusted_proxies": [ip_network("127.0.0.1/32")]})
    runtime = Runtime(settings)
    try:
        with TestClient(create_app(runtime=runtime), client=("127.0.0.1", 5000)) as behind:
            ok(behind.patch("/v1/sellers/me", json={"description": "Behind the proxy"},
                            headers={**seller.key, "X-Forwarded-For": "203.0.113.7"}))
    finally:
        runtime.close()
    [event] = events(client, operator, action="PATCH /v1/sellers/me")
    assert event["address"] == "203.0.113.7"  # it was the proxy's, 127.0.0.1


def test_secrets_never_reach_the_log(client: TestClient, operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    key_for_password(client, seller.owner_email or "", seller.id)
    signup = events(client, operator, action="POST /v1/sellers", object_id=seller.id)[0]
    assert signup["changes"]["password"] == "[redacted]" and signup["person_id"] == seller.owner_id
    login = events(client, operator, action="POST /v1/auth/api-keys")[0]
    assert login["changes"]["password"] == "[redacted]" and login["object_type"] == "api_key"
    assert PASSWORD not in client.get("/v1/audit-events/export", headers=operator).text


def test_reads_and_failed_writes_record_nothing(client: TestClient, env: Backend, operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    _, viewer = member_key(env, Role.SELLER, uuid.UUID(seller.id), "viewer")
    before = len(events(client, operator, limit="200"))
    client.get("/v1/sellers/me", headers=seller.key)
    assert client.post("/v1/products", headers=bearer(viewer), json={}).status_code == 403
    assert client.post("/v1/products", headers=seller.key, json={"name": ""}).status_code == 422
    assert client.post(f"/v1/sellers/{uuid.uuid4()}/approve", headers=operator).status_code == 404
    assert len(events(client, operator, limit="200")) == before


def test_the_log_is_append_only_in_the_orm_and_in_postgresql(client: TestClient, env: Backend,
                                                             operator: dict[str, str]) -> None:
    seller_with_owner(client, operator)
    with pytest.raises(AuditLogAppendOnly), session_scope(env.runtime.sessions) as session:
        row = session.query(AuditEvent).first()
        assert row is not None
        row.action = "nothing happened"
        session.flush()
    with pytest.raises(AuditLogAppendOnly), session_scope(env.runtime.sessions) as session:
        session.delete(session.query(AuditEvent).first())
        session.flush()
    if env.is_postgres:
        with pytest.raises(Exception, match="append-only"), env.runtime.engine.begin() as conn:
            conn.execute(text("UPDATE audit_events SET action = 'x'"))
        with pytest.raises(Exception, match="append-only"), env.runtime.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events"))


def test_operators_read_everything_admins_their_own_organization_viewers_nothing(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    first, second = seller_with_owner(client, operator), seller_with_owner(client, operator)
    _, admin = member_key(env, Role.SELLER, uuid.UUID(first.id), "admin")
    _, viewer = member_key(env, Role.SELLER, uuid.UUID(first.id), "viewer")
    for seller in (first, second):
        ok(client.patch("/v1/sellers/me", headers=seller.key, json={"description": "changed"}))

    mine = events(client, bearer(admin))
    assert mine and {e["organization_id"] for e in mine} == {first.id}
    assert client.get("/v1/audit-events", headers=bearer(viewer)).status_code == 403
    everyone = {e["organization_id"] for e in events(client, operator, action="PATCH /v1/sellers/me")}
    assert everyone == {first.id, second.id}
    # an admin's filter for another organization is their own organization's filter
    assert events(client, bearer(admin), organization_id=second.id) == mine


def test_filters_cursor_pages_and_csv_export(client: TestClient, operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    owner = key_for_password(client, seller.owner_email or "", seller.id)
    for n in range(5):
        ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=owner,
                       json={"email": f"=cmd{n}@example.com", "role": "viewer"}), 201)

    first = ok(client.get("/v1/audit-events", headers=operator, params={"action": INVITE, "limit": 2}))
    second = ok(client.get("/v1/audit-events", headers=operator,
                           params={"action": INVITE, "limit": 2, "cursor": first["next_cursor"]}))
    third = ok(client.get("/v1/audit-events", headers=operator,
                          params={"action": INVITE, "limit": 2, "cursor": second["next_cursor"]}))
    pages = first["items"] + second["items"] + third["items"]
    assert len(pages) == 5 and third["next_cursor"] is None
    assert [e["id"] for e in pages] == sorted((e["id"] for e in pages), reverse=True)  # newest first
    assert {e["person_id"] for e in events(client, operator, person_id=seller.owner_id or "")} == {seller.owner_id}
    assert events(client, operator, action=INVITE, since="2100-01-01T00:00:00Z") == []

    response = client.get("/v1/audit-events/export", headers=operator, params={"action": INVITE})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 5 and {r["action"] for r in rows} == {INVITE}
    assert rows == sorted(rows, key=lambda r: r["id"])  # oldest first


def test_time_filters_need_a_time_zone_and_a_representable_instant(client: TestClient,
                                                                    operator: dict[str, str]) -> None:
    assert client.get("/v1/audit-events", headers=operator, params={"since": "2026-01-01T00:00:00"}).status_code \
        == 422
    assert client.get("/v1/audit-events", headers=operator,
                      params={"since": "0001-01-01T00:00:00+01:00"}).status_code == 422
    assert client.get("/v1/audit-events", headers=operator,
                      params={"until": "2026-01-01T00:00:00+02:00"}).status_code == 200


def test_a_create_names_the_object_it_made(client: TestClient, operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    product = ok(client.post("/v1/products", headers=seller.key, json={
        "name": "Lamp", "currency": "USD",
        "variants": [{"sku": "LAMP-1", "name": "One", "price": {"amount": 1000, "currency": "USD"}, "stock": 3}]}), 201)
    [created] = events(client, operator, action="POST /v1/products")
    assert (created["object_type"], created["object_id"]) == ("product", product["id"])
    variant = ok(client.post(f"/v1/products/{product['id']}/variants", headers=seller.key, json={
        "sku": "LAMP-2", "name": "Two", "price": {"amount": 2000, "currency": "USD"}, "stock": 1}), 201)
    [added] = events(client, operator, action="POST /v1/products/{product_id}/variants")
    assert (added["object_type"], added["object_id"]) == ("variant", variant["id"])
    ok(client.post(f"/v1/products/{product['id']}/publish", headers=seller.key))
    [published] = events(client, operator, action="POST /v1/products/{product_id}/publish")
    assert (published["object_type"], published["object_id"]) == ("product", product["id"])
    invitation = ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=seller.key,
                                json={"email": "new@example.com", "role": "viewer"}), 201)
    [invited] = events(client, operator, action=INVITE)
    assert (invited["object_type"], invited["object_id"]) == ("invitation", invitation["id"])
