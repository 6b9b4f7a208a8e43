"""The platform's kernel through its HTTP surface: health, readiness, API keys, errors, limits."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from kernel.deps import PublicRateLimit
from kernel.runtime import Runtime
from marketplace.app import create_app
from tests.conftest import Backend, bearer, make_settings

PROBLEM = "application/problem+json"


def test_healthz_answers_ok_without_touching_dependencies(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_redis_ok(client: TestClient, env: Backend) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    if env.settings.redis_url:
        assert checks["redis"] == "ok"


def test_readyz_is_503_and_names_the_database_when_it_is_down() -> None:
    settings = make_settings("postgresql+psycopg://postgres@127.0.0.1:1/nowhere", None)
    app = create_app(runtime=Runtime(settings))
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unavailable")


def test_readyz_is_503_and_names_redis_when_it_is_down(env: Backend) -> None:
    settings = make_settings(env.settings.database_url, "redis://127.0.0.1:1/0")
    app = create_app(runtime=Runtime(settings))
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "unavailable: ConnectionError"}


def test_request_without_a_key_is_401_problem(client: TestClient) -> None:
    response = client.get("/v1/api-keys")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["type"].endswith("/unauthorized")
    assert "missing API key" in body["detail"]


def test_request_with_a_wrong_key_is_401(client: TestClient) -> None:
    for key in ("mk_00000000_nottherealsecret", "not-even-our-format"):
        response = client.get("/v1/api-keys", headers=bearer(key))
        assert response.status_code == 401, key
        assert response.headers["content-type"] == PROBLEM


def new_seller_id(client: TestClient) -> str:
    """A seller that applied through the public endpoint (what a seller key acts for)."""
    import uuid

    applied = client.post("/v1/sellers", json={"name": "Keyed", "email": f"k-{uuid.uuid4().hex[:8]}@example.com"})
    assert applied.status_code == 201, applied.text
    return str(applied.json()["seller"]["id"])


def test_operator_issues_a_seller_key_shown_once_and_stored_hashed(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    nobody = client.post("/v1/api-keys", json={"role": "seller", "subject_id": "0190d3f4-0000-7000-8000-000000000001"},
                         headers=operator)
    assert nobody.status_code == 422 and "no seller" in nobody.json()["detail"]
    subject = new_seller_id(client)
    response = client.post("/v1/api-keys", json={"role": "seller", "subject_id": subject}, headers=operator)
    assert response.status_code == 201
    issued = response.json()
    assert issued["key"].startswith(issued["prefix"] + "_")
    listed = client.get("/v1/api-keys", headers=bearer(issued["key"])).json()
    assert issued["id"] in [k["id"] for k in listed]  # beside the key the seller got when it applied
    assert all("key" not in k for k in listed)
    from sqlalchemy import text

    with env.runtime.engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
    assert issued["key"] not in stored


def test_revoked_key_is_refused_on_the_next_request(client: TestClient, operator: dict[str, str]) -> None:
    issued = client.post("/v1/api-keys", json={"role": "operator"}, headers=operator).json()
    assert client.get("/v1/api-keys", headers=bearer(issued["key"])).status_code == 200
    revoked = client.delete(f"/v1/api-keys/{issued['id']}", headers=operator)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = client.get("/v1/api-keys", headers=bearer(issued["key"]))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_seller_key_cannot_issue_keys_403(client: TestClient, operator: dict[str, str]) -> None:
    seller = client.post(
        "/v1/api-keys", json={"role": "seller", "subject_id": new_seller_id(client)},
        headers=operator,
    ).json()
    response = client.post("/v1/api-keys", json={"role": "operator"}, headers=bearer(seller["key"]))
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden")


def test_seller_cannot_revoke_another_principals_key_404(client: TestClient, operator: dict[str, str]) -> None:
    one = client.post(
        "/v1/api-keys", json={"role": "seller", "subject_id": new_seller_id(client)},
        headers=operator,
    ).json()
    other = client.post("/v1/api-keys", json={"role": "operator"}, headers=operator).json()
    response = client.delete(f"/v1/api-keys/{other['id']}", headers=bearer(one["key"]))
    assert response.status_code == 404


def test_malformed_body_is_422_problem_naming_the_field(client: TestClient, operator: dict[str, str]) -> None:
    response = client.post("/v1/api-keys", json={"role": "emperor"}, headers=operator)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"].endswith("/validation-error")
    assert body["errors"][0]["loc"] == ["body", "role"]
    not_json = client.post(
        "/v1/api-keys", content=b"{not json", headers={**operator, "content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert not_json.headers["content-type"] == PROBLEM


def test_seller_key_without_subject_is_422_and_writes_nothing(client: TestClient, operator: dict[str, str]) -> None:
    before = client.get("/v1/api-keys", headers=operator).json()
    response = client.post("/v1/api-keys", json={"role": "seller"}, headers=operator)
    assert response.status_code == 422
    assert "subject_id" in response.json()["detail"]
    assert client.get("/v1/api-keys", headers=operator).json() == before


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


def test_wrong_method_is_405_problem_with_an_allow_header_naming_every_method_of_the_path(
    client: TestClient, operator: dict[str, str]
) -> None:
    response = client.delete("/v1/products", headers=operator)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET, POST"


def test_every_response_carries_a_request_id_and_honours_the_callers(client: TestClient) -> None:
    assert len(client.get("/healthz").headers["x-request-id"]) == 16
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"


def test_api_key_over_its_rate_limit_gets_429_with_retry_after(env: Backend, operator_key: str) -> None:
    settings = env.settings.model_copy(update={"rate_limit_per_key_per_minute": 3})
    runtime = Runtime(settings)
    with TestClient(create_app(runtime=runtime)) as client:
        statuses = [client.get("/v1/api-keys", headers=bearer(operator_key)).status_code for _ in range(4)]
        limited = client.get("/v1/api-keys", headers=bearer(operator_key))
    runtime.close()
    assert statuses == [200, 200, 200, 429]
    assert limited.headers["content-type"] == PROBLEM
    assert 1 <= int(limited.headers["retry-after"]) <= 60


def test_public_endpoint_is_limited_per_client_address(env: Backend) -> None:
    settings = env.settings.model_copy(update={"rate_limit_public_per_minute": 2})
    runtime = Runtime(settings)
    app: FastAPI = create_app(runtime=runtime)

    @app.get("/public-probe", dependencies=[PublicRateLimit])
    def probe() -> dict[str, str]:
        return {"ok": "yes"}

    with TestClient(app) as client:
        statuses = [client.get("/public-probe").status_code for _ in range(3)]
    runtime.close()
    assert statuses == [200, 200, 429]


def test_unexpected_error_is_500_problem_without_a_stack_trace(env: Backend) -> None:
    app = create_app(runtime=env.runtime)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


def test_openapi_describes_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Marketplace platform API"
    assert "/v1/api-keys" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
