"""Safe by default: no public secret signs anything, a server on PostgreSQL says out loud which
development defaults are in force (and has no SSRF default), and production refuses them.

The rule (README, Configuration): without WEBHOOK_SIGNING_SECRET each installation signs with a
secret it generated and keeps in its database; the public development value is refused on
PostgreSQL and in production; private webhook hosts are allowed by default only on the embedded
SQLite default and in tests; ENVIRONMENT=production also needs METRICS_TOKEN.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from kernel import outbound
from kernel.auth import Role
from kernel.db import session_scope
from kernel.installation import webhook_signing_secret
from kernel.runtime import Runtime
from kernel.settings import DEFAULT_WEBHOOK_SIGNING_SECRET, Settings
from marketplace.app import create_app
from marketplace.migrate import upgrade
from tests.conftest import Backend, bearer, issue_key, make_settings
from tests.embedded_server import embedded_server, newcomer_env

PG_URL = "postgresql+psycopg://db.internal/marketplace"


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def _seller_secret(runtime: Runtime) -> tuple[str, str]:
    """(seller id, the seller's webhook secret as GET /v1/webhook-secret shows it) on `runtime`."""
    with TestClient(create_app(runtime=runtime)) as client:
        body = client.post("/v1/sellers", json={"name": "Acme", "email": f"{uuid.uuid4().hex[:8]}@acme.example"})
        assert body.status_code == 201, body.text
        seller = body.json()
        shown = client.get("/v1/webhook-secret", headers=bearer(seller["api_key"]))
        assert shown.status_code == 200, shown.text
        return seller["seller"]["id"], shown.json()["secret"]


def test_two_installations_sign_webhooks_with_secrets_of_their_own_never_the_public_default(tmp_path: Path) -> None:
    runtimes = []
    for name in ("one", "two"):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade(url)
        runtimes.append(Runtime(make_settings(url, None, environment="development", webhook_signing_secret=None)))
    try:
        platform_secrets = []
        for runtime in runtimes:
            with session_scope(runtime.sessions) as session:
                platform_secrets.append(webhook_signing_secret(session, runtime.settings))
            seller_id, shown = _seller_secret(runtime)
            public = outbound.recipient_secret(DEFAULT_WEBHOOK_SIGNING_SECRET, "seller", uuid.UUID(seller_id))
            assert shown != public  # nobody can compute it from the public value and the seller's id
            assert shown == outbound.recipient_secret(platform_secrets[-1], "seller", uuid.UUID(seller_id))
        assert platform_secrets[0] != platform_secrets[1]
        assert DEFAULT_WEBHOOK_SIGNING_SECRET not in platform_secrets
        # The same installation keeps its secret: another process (a fresh runtime) reads the same one.
        again = Runtime(runtimes[0].settings)
        with session_scope(again.sessions) as session:
            assert webhook_signing_secret(session, again.settings) == platform_secrets[0]
        again.close()
    finally:
        for runtime in runtimes:
            runtime.close()


def test_a_configured_webhook_signing_secret_is_the_one_used() -> None:
    settings = _settings(environment="development", webhook_signing_secret="whsec_managed_by_ops")
    assert webhook_signing_secret(None, settings) == "whsec_managed_by_ops"  # type: ignore[arg-type]


def test_production_refuses_the_public_development_secret_and_every_unset_default() -> None:
    ready = {"environment": "production", "database_url": PG_URL, "webhook_signing_secret": "whsec_real_one",
             "metrics_token": "scrape-me"}
    assert _settings(**ready).insecure_defaults() == []
    for change, reason in (({"webhook_signing_secret": DEFAULT_WEBHOOK_SIGNING_SECRET}, "public development value"),
                           ({"webhook_signing_secret": None}, "WEBHOOK_SIGNING_SECRET must be set"),
                           ({"metrics_token": None}, "METRICS_TOKEN is required"),
                           ({"database_url": "sqlite:///./kernel.db"}, "PostgreSQL")):
        with pytest.raises(ValidationError, match=reason):
            _settings(**{**ready, **change})


def test_the_public_development_secret_is_refused_on_postgresql_in_any_environment() -> None:
    with pytest.raises(ValidationError, match="public development value"):
        _settings(environment="development", database_url=PG_URL, webhook_signing_secret=DEFAULT_WEBHOOK_SIGNING_SECRET)


def test_private_webhook_hosts_are_allowed_by_default_only_on_the_embedded_default_and_in_tests() -> None:
    assert _settings(environment="development", database_url="sqlite:///./kernel.db").webhooks_may_reach_private_hosts
    assert _settings(environment="test", database_url=PG_URL).webhooks_may_reach_private_hosts
    assert not _settings(environment="development", database_url=PG_URL).webhooks_may_reach_private_hosts
    assert _settings(environment="development", database_url=PG_URL,
                     webhook_allow_private_hosts=True).webhooks_may_reach_private_hosts  # an explicit choice


def test_production_refuses_to_start_the_server_with_the_public_development_secret(tmp_path: Path) -> None:
    env = {**newcomer_env(), "ENVIRONMENT": "production", "DATABASE_URL": PG_URL, "METRICS_TOKEN": "scrape-me",
           "WEBHOOK_SIGNING_SECRET": DEFAULT_WEBHOOK_SIGNING_SECRET}
    result = subprocess.run([sys.executable, "-m", "marketplace.cli", "serve"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "WEBHOOK_SIGNING_SECRET is the public development value" in result.stdout + result.stderr


@pytest.mark.postgres_only
def test_a_server_on_postgresql_without_production_settings_names_each_insecure_default_and_refuses_ssrf(
    env: Backend, tmp_path: Path
) -> None:
    issue_key(env, Role.OPERATOR)
    served_env = {"DATABASE_URL": env.settings.database_url}
    with embedded_server(tmp_path, env=served_env) as served:
        seller = httpx.post(f"{served.base_url}/v1/sellers", json={"name": "Acme", "email": "acme@ssrf.example"})
        assert seller.status_code == 201, seller.text
        headers = bearer(seller.json()["api_key"])
        for url in ("http://169.254.169.254/latest/meta-data", "http://127.0.0.1:9/hook"):
            refused = httpx.patch(f"{served.base_url}/v1/sellers/me", headers=headers, json={"webhook_url": url})
            assert refused.status_code == 422, refused.text
        assert httpx.get(f"{served.base_url}/v1/webhook-secret", headers=headers).json()["secret"] != (
            outbound.recipient_secret(DEFAULT_WEBHOOK_SIGNING_SECRET, "seller",
                                      uuid.UUID(seller.json()["seller"]["id"])))
    output = served.output()
    warning = output[output.index("ENVIRONMENT=development: insecure defaults in force"):]
    assert "WEBHOOK_SIGNING_SECRET is unset" in warning and "installation_secrets" in warning
    assert "METRICS_TOKEN is unset: GET /metrics is open" in warning
    assert "WEBHOOK_ALLOW_PRIVATE_HOSTS" not in output  # refused on PostgreSQL by default: nothing to warn of
    assert output.count("insecure defaults in force") == 1
