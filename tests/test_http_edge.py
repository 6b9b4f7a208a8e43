"""The HTTP edge, probed from outside (issue 12): request body limit, headers on every response,
secrets never cached, failed authentication throttled per client address, who the client is
behind proxies, one log line per request, one rule for rejected payees, and Stripe webhook
bodies that are signed but not events."""

from __future__ import annotations

import asyncio
import json
import time
import typing
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_network
from typing import Any, TypeVar

import httpx
import pytest
import structlog
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, SecretStr
from structlog.typing import EventDict

from kernel import auth
from kernel.client import resolve
from kernel.deps import no_store
from kernel.settings import Settings
from marketplace.app import create_app
from tests.affiliates.conftest import Market
from tests.conftest import Backend, bearer, make_settings
from tests.embedded_server import embedded_server
from tests.fake_stripe import sign_payload
from tests.orders.world import cart, checkout, worked_example
from tests.people.conftest import PASSWORD, seller_with_owner

ONE_MIB = 1024 * 1024


@pytest.fixture
def market(client: TestClient, operator: dict[str, str]) -> Market:
    return Market(client, operator)


def configure(env: Backend, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Settings:
    """Run the rest of the test with these settings (the app reads runtime.settings per request)."""
    settings = env.runtime.settings.model_copy(update=overrides)
    monkeypatch.setattr(env.runtime, "settings", settings)
    return settings


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["type"]).rsplit("/", 1)[-1]


# --- request body limit ---------------------------------------------------------------------------


async def _asgi_post(app: Any, path: str, chunks: list[bytes], content_length: int | None) -> tuple[int, bytes, int]:
    """POST through the ASGI app with the body in `chunks`; returns (status, body, chunks read)."""
    headers = [(b"host", b"test"), (b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {},
    }
    read = 0
    status = 0
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read >= len(chunks):
            await asyncio.sleep(3600)
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(body), read


T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: under xdist this worker may also hold the browser tests'
    session-wide Playwright, whose event loop runs in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_a_body_past_the_limit_is_a_413_problem_and_is_not_read(client: TestClient) -> None:
    chunk = b" " * 65536
    thirty_mb = [chunk] * (30 * ONE_MIB // len(chunk))
    # Content-Length says it: refused before a single byte is read.
    status, body, read = _run(_asgi_post(client.app, "/v1/checkout", thirty_mb, 30 * ONE_MIB))
    assert (status, read) == (413, 0)
    assert json.loads(body)["type"].endswith("/payload-too-large")
    # Chunked (no Content-Length): refused as soon as the streamed bytes pass the limit.
    status, body, read = _run(_asgi_post(client.app, "/v1/checkout", thirty_mb, None))
    assert status == 413 and json.loads(body)["type"].endswith("/payload-too-large")
    assert read <= ONE_MIB // len(chunk) + 1
    # Through an HTTP client, and for a route that reads its body itself (the Stripe webhook).
    for path in ("/v1/checkout", "/v1/webhooks/stripe", "/v1/sellers"):
        response = client.post(path, content=b"[" + b"1," * ONE_MIB + b"1]",
                               headers={"content-type": "application/json", "Idempotency-Key": "k" * 16})
        assert response.status_code == 413 and problem_type(response) == "payload-too-large", path
    # Under the limit, the body is read and judged as usual.
    under = client.post("/v1/checkout", content=b" " * (ONE_MIB - 10) + b"{}",
                        headers={"content-type": "application/json", "Idempotency-Key": "k" * 16})
    assert under.status_code == 422


def test_the_body_limit_is_a_setting(client: TestClient, env: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(env, monkeypatch, max_request_body_bytes=2048)
    response = client.post("/v1/sellers", json={"name": "x" * 3000, "email": "big@example.com"})
    assert response.status_code == 413 and "2048 bytes" in response.json()["detail"]
    assert client.post("/v1/sellers", json={"name": "Small", "email": "small@example.com"}).status_code == 201


# --- headers --------------------------------------------------------------------------------------


def test_every_response_says_nosniff(client: TestClient, market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    link = market.link(market.affiliate())
    responses = {
        "ok": client.get("/healthz"),
        "redirect": client.get(f"/r/{link['code']}", follow_redirects=False),
        "not found": client.get("/no/such/page"),
        "method": client.delete("/healthz"),
        "unauthorized": client.get("/v1/sellers/me"),
        "validation": client.post("/v1/checkout", json={}, headers={"Idempotency-Key": "k" * 16}),
        "nul": client.get("/v1/storefronts/a%00b"),
        "too large": client.post("/v1/sellers", content=b"{" * (2 * ONE_MIB)),
    }

    def broken(*_args: object) -> None:
        raise RuntimeError("the database caught fire")

    monkeypatch.setattr(auth, "authenticate", broken)
    responses["error"] = client.get("/v1/sellers/me", headers=market.operator)
    assert {name: r.status_code for name, r in responses.items()} == {
        "ok": 200, "redirect": 302, "not found": 404, "method": 405, "unauthorized": 401, "validation": 422,
        "nul": 400, "too large": 413, "error": 500}
    assert {name: r.headers.get("x-content-type-options") for name, r in responses.items()} == {
        name: "nosniff" for name in responses}
    assert responses["error"].headers.get("x-request-id")  # the id the unhandled error was logged with


def test_responses_that_carry_a_secret_are_not_stored_by_caches(market: Market) -> None:
    client = market.client
    seller = client.post("/v1/sellers", json={"name": "S", "email": f"{uuid.uuid4().hex}@example.com"})
    affiliate = client.post("/v1/affiliates", json={"name": "A", "email": f"{uuid.uuid4().hex}@example.com"})
    key = client.post("/v1/api-keys", headers=market.operator, json={"role": "operator"})
    secret = client.get("/v1/webhook-secret", headers=bearer(seller.json()["api_key"]))
    link = market.link(market.affiliate())
    redirect = client.get(f"/r/{link['code']}", follow_redirects=False)
    for response in (seller, affiliate, key, secret, redirect):
        assert response.status_code in (200, 201, 302), response.text
        assert response.headers.get("cache-control") == "no-store", response.request.url
    assert "set-cookie" in redirect.headers
    assert "cache-control" not in client.get("/healthz").headers  # only where a secret is


SECRET_FIELDS = {"api_key", "key", "secret", "client_secret", "status_token", "csrf_token", "otpauth_uri"}
# Handlers that return a ready Response (FastAPI drops a dependency's headers then): they set
# no-store themselves; the test below sends their requests.
SETS_NO_STORE_ITSELF = {"checkout_in_storefront", "checkout_direct", "place_order"}


def _secret_fields(model: Any, seen: set[Any]) -> set[str]:
    """The fields named like a secret anywhere in the response model `model`."""
    found: set[str] = set()
    for arg in typing.get_args(model):
        found |= _secret_fields(arg, seen)
    if isinstance(model, type) and issubclass(model, BaseModel) and model not in seen:
        seen.add(model)
        for name, info in model.model_fields.items():
            if name in SECRET_FIELDS:
                found.add(f"{model.__name__}.{name}")
            found |= _secret_fields(info.annotation, seen)
    return found


def _dependency_calls(dependant: Any) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _dependency_calls(dependency)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)


def test_every_operation_whose_answer_names_a_secret_is_no_store(env: Backend) -> None:
    """A guard over the app: a new route returning a key, a token or a client secret fails here
    until it says no-store (kernel.deps.NoStore)."""
    carriers = {}
    for route in _api_routes(create_app(runtime=env.runtime).routes):
        if _secret_fields(route.response_model, set()):
            where = f"{sorted(route.methods or ())} {route.path}"
            carriers[route.name] = (where, set(_dependency_calls(route.dependant)))
    assert {"create_my_key", "log_in", "start_totp", "accept_invitation", "apply_as_seller"} <= set(carriers)
    assert set(carriers) >= SETS_NO_STORE_ITSELF
    missing = [where for name, (where, calls) in carriers.items()
               if name not in SETS_NO_STORE_ITSELF and no_store not in calls]
    assert missing == []


def test_logins_personal_keys_totp_secrets_and_orders_are_not_stored_by_caches(
    client: TestClient, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    email = seller.owner_email or ""
    login = client.post("/v1/sessions", json={"email": email, "password": PASSWORD})
    by_password = client.post("/v1/auth/api-keys", json={"email": email, "password": PASSWORD,
                                                          "organization_id": seller.id})
    personal = bearer(by_password.json()["key"])
    answers = {
        "login": login, "key for a password": by_password,
        "personal key": client.post("/v1/me/api-keys", headers=personal, json={"name": "dashboard"}),
        "totp secret": client.post("/v1/me/totp", headers=personal),
    }
    world = worked_example(client, operator)
    answers["storefront checkout"] = checkout(client, "a-store", cart(world, ("X-PRO", 1)))
    answers["direct checkout"] = checkout(client, None, cart(world, ("X-PRO", 1)))
    answers["operator's order"] = client.get(f"/v1/orders/{answers['direct checkout'].json()['id']}",
                                             headers=operator)
    assert {what: (r.status_code, r.headers.get("cache-control")) for what, r in answers.items()} == {
        what: (r.status_code, "no-store") for what, r in answers.items()}
    assert all(r.status_code in (200, 201) for r in answers.values()), {w: r.text for w, r in answers.items()}


# --- failed authentication ---------------------------------------------------------------------


def test_failed_authentication_is_throttled_per_address_before_any_key_lookup(
    client: TestClient, env: Backend, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(env, monkeypatch, auth_failures_per_minute=5)
    lookups: list[str] = []
    real = auth.authenticate

    def counted(session: Any, key: str) -> auth.Principal:
        lookups.append(key)
        return real(session, key)

    monkeypatch.setattr(auth, "authenticate", counted)
    for n in range(5):
        response = client.get("/v1/sellers/me", headers=bearer(f"mk_guess_{n}"))
        assert response.status_code == 401
    refused = client.get("/v1/sellers/me", headers=bearer("mk_guess_6"))
    assert refused.status_code == 429 and problem_type(refused) == "rate-limited"
    assert 0 < int(refused.headers["retry-after"]) <= 60
    # Refused before the lookup, whatever the key: guessing costs no database work now.
    assert client.get("/v1/api-keys", headers=operator).status_code == 429
    assert len(lookups) == 5
    # Another address is not affected; a missing key is not a guess.
    with TestClient(create_app(runtime=env.runtime), client=("203.0.113.9", 4000)) as elsewhere:
        assert elsewhere.get("/v1/api-keys", headers=operator).status_code == 200
    assert client.get("/v1/sellers/me").status_code == 401


# --- who the client is ------------------------------------------------------------------------------


@pytest.mark.parametrize(("peer", "forwarded", "proxies", "client"), [
    ("127.0.0.1", "203.0.113.7", [], "127.0.0.1"),  # no trusted proxy: the header is ignored
    ("198.51.100.2", "203.0.113.7", ["10.0.0.0/8"], "198.51.100.2"),  # not from our proxy
    ("10.0.0.5", "203.0.113.7", ["10.0.0.0/8"], "203.0.113.7"),
    ("10.0.0.5", "1.1.1.1, 203.0.113.7, 10.0.0.9", ["10.0.0.0/8"], "203.0.113.7"),  # spoofed left part
    ("10.0.0.5", "garbage, 203.0.113.7", ["10.0.0.0/8"], "203.0.113.7"),
    ("10.0.0.5", "203.0.113.7, garbage", ["10.0.0.0/8"], "10.0.0.5"),
    ("::1", "2001:db8::1", ["::1"], "2001:db8::1"),
    ("10.0.0.5", None, ["10.0.0.0/8"], "10.0.0.5"),
])
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    peer: str, forwarded: str | None, proxies: list[str], client: str
) -> None:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    scope = {"client": (peer, 1234), "headers": headers}
    assert resolve(scope, [ip_network(p) for p in proxies]) == client


def test_trusted_proxies_setting_parses_addresses_and_networks() -> None:
    settings = make_settings("sqlite://", None, trusted_proxies="10.0.0.1, 192.168.0.0/16")
    assert settings.trusted_proxies == [ip_network("10.0.0.1/32"), ip_network("192.168.0.0/16")]
    assert make_settings("sqlite://", None).trusted_proxies == []
    with pytest.raises(ValueError, match="does not appear to be"):
        make_settings("sqlite://", None, trusted_proxies="not-an-address")


def test_a_forwarded_header_does_not_give_a_client_a_fresh_rate_limit_bucket(
    env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(env, monkeypatch, rate_limit_public_per_minute=3)
    with TestClient(create_app(runtime=env.runtime), client=("127.0.0.1", 5000)) as local:
        statuses = [local.get("/r/nope", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
                    for n in range(5)]
        assert statuses == [404, 404, 404, 429, 429]
    # Behind a proxy we trust, each forwarded client has its own bucket.
    configure(env, monkeypatch, rate_limit_public_per_minute=3, trusted_proxies=[ip_network("127.0.0.1/32")])
    with TestClient(create_app(runtime=env.runtime), client=("127.0.0.1", 5000)) as proxied:
        assert [proxied.get("/r/nope", headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
                for n in range(5)] == [404] * 5


# --- one log line per request ------------------------------------------------------------------------


@pytest.fixture
def captured_logs() -> Iterator[list[EventDict]]:
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        yield entries


def test_each_request_logs_one_structured_line(
    client: TestClient, market: Market, captured_logs: list[EventDict]
) -> None:
    affiliate = market.affiliate()  # (its requests are logged too)
    del captured_logs[:]
    client.get("/v1/affiliates/me", headers={**affiliate.headers, "X-Request-ID": "req-affiliate-1"})
    client.get("/healthz", headers={"X-Request-ID": "req-anonymous-1"})
    client.get("/v1/sellers/me", headers={**bearer("mk_wrong_key"), "X-Request-ID": "req-refused-1"})
    lines = [entry for entry in captured_logs if entry["event"] == "request"]
    assert [(e["request_id"], e["method"], e["path"], e["status"]) for e in lines] == [
        ("req-affiliate-1", "GET", "/v1/affiliates/me", 200),
        ("req-anonymous-1", "GET", "/healthz", 200),
        ("req-refused-1", "GET", "/v1/sellers/me", 401),
    ]
    assert [(e["principal_kind"], e["principal_id"]) for e in lines] == [
        ("affiliate", affiliate.id), ("anonymous", None), ("anonymous", None)]
    assert all(isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in lines)
    assert all(e["client"] == "testclient" and e["log_level"] == "info" for e in lines)


def test_requests_are_not_logged_when_turned_off(
    client: TestClient, env: Backend, monkeypatch: pytest.MonkeyPatch, captured_logs: list[EventDict]
) -> None:
    configure(env, monkeypatch, log_requests=False)
    client.get("/healthz")
    assert [e for e in captured_logs if e["event"] == "request"] == []


def test_marketplace_serve_logs_one_line_per_request_and_ignores_forwarded_for(tmp_path: Any) -> None:
    """The server as started: the app's request line on by default and uvicorn's access log off
    (one line per request), and no X-Forwarded-For from a local process moves the client to a
    fresh throttle bucket (uvicorn trusts that header from 127.0.0.1 unless told not to)."""
    with embedded_server(tmp_path, env={"AUTH_FAILURES_PER_MINUTE": "3"}) as served:
        statuses = [httpx.get(f"{served.base_url}/v1/sellers/me", timeout=10, headers={
            "Authorization": f"Bearer mk_guess_{n}", "X-Forwarded-For": f"203.0.113.{n}",
            "X-Request-ID": f"serve-probe-{n}"}).status_code for n in range(5)]
        deadline = time.monotonic() + 10
        while served.output().count("serve-probe-") < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        output = served.output()
    assert statuses == [401, 401, 401, 429, 429]
    for n in range(5):
        [line] = [line for line in output.splitlines() if f"request_id=serve-probe-{n} " in line + " "]
        assert " request " in line and "path=/v1/sellers/me" in line and "client=127.0.0.1" in line, line
    assert '"GET /v1/sellers/me HTTP/1.1"' not in output  # no uvicorn access line


# --- one rule for rejected payees -------------------------------------------------------------------


def test_a_rejected_seller_and_a_rejected_affiliate_get_the_same_403_for_acting(market: Market) -> None:
    client = market.client
    seller = market.seller()
    (item,) = market.product(seller, 1000)
    affiliate = market.affiliate()
    client.post(f"/v1/sellers/{seller.id}/reject", headers=market.operator, json={"reason": "fraud"})
    client.post(f"/v1/affiliates/{affiliate.id}/reject", headers=market.operator, json={"reason": "fraud"})
    variant = {"sku": "R-1", "name": "One", "price": {"amount": 100, "currency": "USD"}, "stock": 1}
    attempts = {
        "seller creates a draft product": client.post("/v1/products", headers=seller.headers, json={
            "name": "Draft", "currency": "USD", "variants": [variant]}),
        "seller sets its webhook_url": client.patch("/v1/sellers/me", headers=seller.headers,
                                                    json={"webhook_url": "https://hooks.example/s"}),
        "seller reads its webhook secret": client.get("/v1/webhook-secret", headers=seller.headers),
        "seller changes stock": client.post(
            f"/v1/products/{item.product_id}/variants/{item.variant_id}/stock", headers=seller.headers,
            json={"delta": 5}),
        "affiliate creates a storefront": client.post("/v1/storefronts", headers=affiliate.headers, json={
            "slug": "rejected-shop", "name": "x", "currency": "USD"}),
        "affiliate sets its webhook_url": client.patch("/v1/affiliates/me", headers=affiliate.headers,
                                                       json={"webhook_url": "https://hooks.example/a"}),
        "affiliate reads its webhook secret": client.get("/v1/webhook-secret", headers=affiliate.headers),
        "affiliate creates a link": client.post("/v1/referral-links", headers=affiliate.headers,
                                                json={"target_url": "https://x.example"}),
    }
    assert {what: (r.status_code, problem_type(r)) for what, r in attempts.items()} == {
        what: (403, "payee-rejected") for what in attempts}
    # They still read what is theirs (status and reason), and may revoke their keys.
    assert client.get("/v1/sellers/me", headers=seller.headers).json()["status"] == "rejected"
    assert client.get("/v1/affiliates/me", headers=affiliate.headers).json()["status_reason"] == "fraud"
    [key] = client.get("/v1/api-keys", headers=affiliate.headers).json()
    assert client.delete(f"/v1/api-keys/{key['id']}", headers=affiliate.headers).status_code == 200
    # Approved again, the seller acts again; a pending (never rejected) payee is not concerned.
    client.post(f"/v1/sellers/{seller.id}/approve", headers=market.operator)
    assert client.get("/v1/webhook-secret", headers=seller.headers).status_code == 200
    pending = market.apply()
    assert client.patch("/v1/affiliates/me", headers=pending.headers, json={"audience": "makers"}).status_code == 200


# --- signed Stripe webhooks that are not events ---------------------------------------------------------


WEBHOOK_SECRET = "whsec_http_edge_tests"


def test_signed_webhook_bodies_that_are_not_events_are_400_not_500(
    client: TestClient, env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(env, monkeypatch, stripe_webhook_secret=SecretStr(WEBHOOK_SECRET))

    def post(payload: bytes, timestamp: int | None = None) -> httpx.Response:
        headers = {"Stripe-Signature": sign_payload(payload, WEBHOOK_SECRET, timestamp),
                   "Content-Type": "application/json"}
        response: httpx.Response = client.post("/v1/webhooks/stripe", content=payload, headers=headers)
        return response

    for payload in (b"[]", b'"x"', b"1", b"null", b'{"id": "evt_\\u0000x", "type": "account.updated"}',
                    b'{"id": "evt_1", "type": "a", "data": {"k": "\\u0000"}}', b"\xff\xfe", b"{not json"):
        response = post(payload)
        assert response.status_code == 400 and problem_type(response) == "webhook-payload-invalid", payload
    event = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "type": "balance.available"}).encode()
    future = post(event, int(time.time()) + 3600)
    assert future.status_code == 400 and problem_type(future) == "webhook-signature-invalid"
    assert "future" in future.json()["detail"]
    assert post(event, int(time.time()) + 200).status_code == 200  # clock skew within the tolerance
