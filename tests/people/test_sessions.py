"""Browser sessions: log in with email and password, a server-side session in an HttpOnly,
SameSite=Lax cookie, a fresh token at every login (no fixation), CSRF on every unsafe request
made with the cookie, logout and revocation end it at once, failed logins slow down per account
and per address."""

from __future__ import annotations

import uuid
from datetime import timedelta
from ipaddress import ip_network
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel import sessions
from kernel.auth import Role
from kernel.cache import CountersOnlyStore
from kernel.clock import clock
from kernel.runtime import Runtime
from marketplace.app import create_app
from tests.conftest import Backend
from tests.people.conftest import PASSWORD, Inbox, member_key, ok, seller_with_owner, token_in


def login(client: TestClient, email: str, password: str = PASSWORD, **extra: str) -> dict[str, Any]:
    result: dict[str, Any] = ok(client.post("/v1/sessions", json={"email": email, "password": password, **extra}), 201)
    return result


def test_login_sets_an_httponly_samesite_cookie_that_authenticates_reads(
    client: TestClient, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    response = client.post("/v1/sessions", json={"email": (seller.owner_email or "").upper(), "password": PASSWORD})
    assert response.status_code == 201, response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{sessions.COOKIE}=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # only in production
    me = ok(client.get("/v1/me"))
    assert me["person"]["id"] == seller.owner_id and me["role"] == "owner" and me["organization_id"] == seller.id
    assert [s["id"] for s in ok(client.get("/v1/sessions"))] == [response.json()["id"]]


def test_the_cookie_is_secure_in_production(env: Backend) -> None:
    settings = env.settings.model_copy(update={"environment": "production"})
    app = create_app(runtime=env.runtime)
    app.state.runtime.settings = settings
    try:
        with TestClient(app, base_url="https://testserver") as client:
            op = ok(client.post("/v1/sellers", json={"name": "Prod", "email": "prod@example.com",
                                                     "password": PASSWORD}), 201)
            assert op["owner_person_id"]
            response = client.post("/v1/sessions", json={"email": "prod@example.com", "password": PASSWORD})
            assert response.status_code == 201 and "Secure" in response.headers["set-cookie"]
    finally:
        app.state.runtime.settings = env.settings


def test_unsafe_requests_with_the_cookie_need_the_csrf_token(client: TestClient, operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    csrf = login(client, seller.owner_email or "")["csrf_token"]
    body = {"description": "changed by cookie"}
    refused = client.patch("/v1/sellers/me", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert client.patch("/v1/sellers/me", json=body, headers={sessions.CSRF_HEADER: "wrong"}).status_code == 403
    ok(client.patch("/v1/sellers/me", json=body, headers={sessions.CSRF_HEADER: csrf}))
    [event] = ok(client.get("/v1/audit-events", params={"action": "PATCH /v1/sellers/me"}))["items"]
    assert event["person_id"] == seller.owner_id and event["session_id"] and event["api_key_id"] is None


def test_a_session_token_planted_before_login_is_never_adopted(client: TestClient, operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    first = login(client, seller.owner_email or "")
    planted = client.cookies.get(sessions.COOKIE)
    second = login(client, seller.owner_email or "")  # the browser logs in again with that cookie
    assert second["id"] != first["id"] and client.cookies.get(sessions.COOKIE) != planted
    client.cookies.set(sessions.COOKIE, planted or "")
    assert client.get("/v1/me").status_code == 401  # the earlier session ended at the new login
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, "attacker-chosen-value")
    assert client.get("/v1/me").status_code == 401


def test_logout_ends_the_session_at_once_and_another_can_be_revoked_from_the_list(
    client: TestClient, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    email = seller.owner_email or ""
    other = TestClient(client.app)
    elsewhere = ok(other.post("/v1/sessions", json={"email": email, "password": PASSWORD}), 201)
    csrf = login(client, email)["csrf_token"]
    assert len(ok(client.get("/v1/sessions"))) == 2
    ok(client.delete(f"/v1/sessions/{elsewhere['id']}", headers={sessions.CSRF_HEADER: csrf}))
    assert other.get("/v1/me").status_code == 401
    cookie = client.cookies.get(sessions.COOKIE)
    assert client.delete("/v1/sessions/current", headers={sessions.CSRF_HEADER: csrf}).status_code == 204
    client.cookies.set(sessions.COOKIE, cookie or "")  # a copy of the cookie kept after logout
    assert client.get("/v1/me").status_code == 401


def test_a_removed_member_s_session_stops_working(client: TestClient, env: Backend, operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    person_id, _ = member_key(env, Role.SELLER, uuid.UUID(seller.id), "catalog")
    member = TestClient(client.app)
    email = ok(client.get(f"/v1/organizations/{seller.id}/members", headers=seller.key))
    address = next(m["email"] for m in email if m["person_id"] == str(person_id))
    ok(member.post("/v1/sessions", json={"email": address, "password": PASSWORD}), 201)
    assert ok(member.get("/v1/me"))["role"] == "catalog"
    assert client.delete(f"/v1/organizations/{seller.id}/members/{person_id}", headers=seller.key).status_code == 204
    assert member.get("/v1/me").status_code == 401


def test_failed_logins_slow_down_where_several_processes_serve_without_redis(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    """PostgreSQL or a broker, no REDIS_URL: the store caches nothing (kernel.cache), and the
    back-off must still hold (it read nothing back there, so guessing was never slowed down)."""
    seller = seller_with_owner(client, operator)
    settings = env.runtime.settings.model_copy(update={"redis_url": None, "celery_broker_url": "redis://127.0.0.1:1/0"})
    runtime = Runtime(settings)
    try:
        assert isinstance(runtime.store, CountersOnlyStore)
        with TestClient(create_app(runtime=runtime)) as several:
            for _ in range(sessions.FREE_FAILURES):
                wrong = several.post("/v1/sessions", json={"email": seller.owner_email, "password": "wrong password"})
                assert wrong.status_code == 401
            throttled = several.post("/v1/sessions", json={"email": seller.owner_email, "password": PASSWORD})
            assert throttled.status_code == 429, throttled.text
    finally:
        runtime.close()


def test_behind_a_trusted_proxy_a_guessers_failed_logins_slow_down_its_address_not_everyone(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    """The login back-off's address is the client's by the one rule of kernel.client (it was the
    proxy's: one guesser locked every user behind it out, and X-Forwarded-For from elsewhere
    is still not believed)."""
    seller = seller_with_owner(client, operator)
    settings = env.runtime.settings.model_copy(update={"trusted_proxies": [ip_network("127.0.0.1/32")]})
    runtime = Runtime(settings)

    def log_in(behind: TestClient, forwarded_for: str, email: str, password: str) -> int:
        status: int = behind.post("/v1/sessions", headers={"X-Forwarded-For": forwarded_for},
                                  json={"email": email, "password": password}).status_code
        return status

    try:
        with TestClient(create_app(runtime=runtime), client=("127.0.0.1", 5000)) as behind:
            for n in range(sessions.FREE_FAILURES):
                assert log_in(behind, "198.51.100.1", f"nobody-{n}@example.com", "wrong password") == 401
            assert log_in(behind, "198.51.100.1", seller.owner_email or "", PASSWORD) == 429
            assert log_in(behind, "198.51.100.2", seller.owner_email or "", PASSWORD) == 201
    finally:
        runtime.close()


@pytest.mark.parametrize("same_account", [True, False])
def test_failed_logins_slow_down_per_account_and_per_address(
    client: TestClient, operator: dict[str, str], same_account: bool
) -> None:
    seller = seller_with_owner(client, operator)
    email = seller.owner_email or ""
    for n in range(sessions.FREE_FAILURES):
        target = email if same_account else f"nobody-{n}@example.com"
        assert client.post("/v1/sessions", json={"email": target, "password": "wrong password"}).status_code == 401
    # now even the right password waits: the account (or this address) is backing off
    throttled = client.post("/v1/sessions", json={"email": email, "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert [sessions.backoff_seconds(n) for n in (4, 5, 6, 7, 20)] == [0, 2, 4, 8, 900]


def test_a_password_reset_arrives_by_smtp_works_once_and_ends_every_session(
    mail_client: TestClient, inbox: Inbox, operator: dict[str, str]
) -> None:
    client = mail_client
    seller = seller_with_owner(client, operator)
    email = seller.owner_email or ""
    browser = TestClient(client.app)
    ok(browser.post("/v1/sessions", json={"email": email, "password": PASSWORD}), 201)

    assert client.post("/v1/password-resets", json={"email": "nobody@example.com"}).status_code == 202
    assert client.post("/v1/password-resets", json={"email": email.upper()}).status_code == 202
    assert inbox.to("nobody@example.com") == []
    [message] = inbox.to(email)
    token = token_in(Inbox.body(message))

    new_password = "a brand new passphrase"
    assert client.post("/v1/password-resets/confirm", json={"token": token, "password": new_password}).status_code \
        == 204
    assert browser.get("/v1/me").status_code == 401  # the session made with the old password ended
    assert client.post("/v1/sessions", json={"email": email, "password": PASSWORD}).status_code == 401
    login(client, email, new_password)
    again = client.post("/v1/password-resets/confirm", json={"token": token, "password": "yet another one!"})
    assert again.status_code == 410
    clock.advance(timedelta(hours=2))
    assert client.post("/v1/password-resets", json={"email": email}).status_code == 202
    late = token_in(Inbox.body(inbox.to(email)[-1]))
    clock.advance(timedelta(hours=2))
    assert client.post("/v1/password-resets/confirm", json={"token": late, "password": "too late now!"}).status_code \
        == 410


def test_wrong_passwords_for_a_key_count_like_failed_logins(client: TestClient, operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    email = seller.owner_email or ""
    wrong = {"email": email, "password": "not my password", "organization_id": seller.id}
    for _ in range(sessions.FREE_FAILURES):
        assert client.post("/v1/auth/api-keys", json=wrong).status_code == 401
    assert client.post("/v1/auth/api-keys", json={**wrong, "password": PASSWORD}).status_code == 429
    assert client.post("/v1/sessions", json={"email": email, "password": PASSWORD}).status_code == 429
