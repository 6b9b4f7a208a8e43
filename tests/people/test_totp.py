"""The optional TOTP second factor: turned on in two steps, then needed at every login and every
key made with the password; a code works once; required for operator admins and finance in
production."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pyotp
from fastapi.testclient import TestClient

from kernel import permissions
from kernel.auth import Role
from kernel.clock import clock
from kernel.db import session_scope
from kernel.people import add_membership, create_person
from marketplace.app import create_app
from tests.conftest import Backend
from tests.people.conftest import PASSWORD, key_for_password, ok, seller_with_owner


def code_of(secret: str) -> str:
    return pyotp.TOTP(secret).at(clock.now())


def test_with_totp_on_a_login_and_a_password_key_need_a_code_that_works_once(
    client: TestClient, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    email = seller.owner_email or ""
    owner = key_for_password(client, email, seller.id)
    started = ok(client.post("/v1/me/totp", headers=owner))
    assert started["otpauth_uri"].startswith("otpauth://totp/") and started["secret"] in started["otpauth_uri"]
    secret = started["secret"]
    assert client.post("/v1/me/totp/confirm", headers=owner, json={"totp_code": "000000"}).status_code == 401
    clock.advance(timedelta(seconds=31))
    assert client.post("/v1/me/totp/confirm", headers=owner, json={"totp_code": code_of(secret)}).status_code == 204

    login = {"email": email, "password": PASSWORD}
    assert client.post("/v1/sessions", json=login).status_code == 401
    assert client.post("/v1/sessions", json={**login, "totp_code": "123456"}).status_code == 401
    clock.advance(timedelta(seconds=31))
    code = code_of(secret)
    assert client.post("/v1/sessions", json={**login, "totp_code": code}).status_code == 201
    assert client.post("/v1/sessions", json={**login, "totp_code": code}).status_code == 401  # used once
    keyed = {**login, "organization_id": seller.id}
    assert client.post("/v1/auth/api-keys", json=keyed).status_code == 401
    clock.advance(timedelta(seconds=31))
    assert client.post("/v1/auth/api-keys", json={**keyed, "totp_code": code_of(secret)}).status_code == 201

    clock.advance(timedelta(seconds=31))
    assert client.post("/v1/me/totp/disable", headers=owner, json={"totp_code": code_of(secret)}).status_code == 204
    assert client.post("/v1/sessions", json=login).status_code == 201
    assert client.post("/v1/me/totp", headers=seller.key).status_code == 403  # an organization key has no person
    events = ok(client.get("/v1/audit-events", headers=operator, params={"action": "POST /v1/me/totp/confirm"}))
    assert events["items"][0]["changes"] == {"totp_code": "[redacted]"}


def test_in_production_operator_admins_and_finance_must_turn_totp_on(env: Backend) -> None:
    emails: dict[str, str] = {}
    with session_scope(env.runtime.sessions) as session:
        for role in ("admin", "finance", "support"):
            person = create_person(session, f"{role}-{uuid.uuid4().hex[:6]}@example.com", role, PASSWORD)
            add_membership(session, person, Role.OPERATOR, permissions.OPERATOR_TEAM_ID, role)
            emails[role] = person.email
    app = create_app(runtime=env.runtime)
    app.state.runtime.settings = env.settings.model_copy(update={"environment": "production"})
    try:
        with TestClient(app, base_url="https://testserver") as client:
            for role, expected in (("admin", 403), ("finance", 403), ("support", 201)):
                response = client.post("/v1/sessions", json={"email": emails[role], "password": PASSWORD})
                assert response.status_code == expected, (role, response.text)
            refused = client.post("/v1/auth/api-keys", json={
                "email": emails["finance"], "password": PASSWORD,
                "organization_id": str(permissions.OPERATOR_TEAM_ID)})
            assert refused.status_code == 403 and "TOTP" in refused.json()["detail"]
    finally:
        app.state.runtime.settings = env.settings
