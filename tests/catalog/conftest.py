"""Catalog test fixtures: a platform wired to the fake Stripe server, and small builders that go
through the HTTP API (sellers, products) so tests read like a seller's session."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import Backend, bearer
from tests.fake_stripe import FakeStripe
from tests.fake_stripe.clients import CLIENT_TIMEOUT_SECONDS, fast_retries

WEBHOOK_SECRET = "whsec_catalog_tests"
_counter = itertools.count(1)


@pytest.fixture
def stripe_env(env: Backend, fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    """The platform configured for Stripe Connect, talking to the fake server (`fake_stripe`, from
    the tests.fake_stripe.fixture plugin) with short timeouts and near-zero retry back-off, and a
    webhook secret the tests sign with."""
    settings = env.runtime.settings.model_copy(update={
        "stripe_api_key": SecretStr(fake_stripe.api_key),
        "stripe_api_base": fake_stripe.url,
        "stripe_webhook_secret": SecretStr(WEBHOOK_SECRET),
        "stripe_timeout_seconds": CLIENT_TIMEOUT_SECONDS,
        "stripe_max_network_retries": 2,
    })
    fast_retries(monkeypatch)
    monkeypatch.setattr(env.runtime, "settings", settings)
    env.runtime.__dict__.pop("rail", None)
    yield fake_stripe
    env.runtime.__dict__.pop("rail", None)


def unique_email(prefix: str = "seller") -> str:
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}@example.com"


def apply_seller(client: TestClient, name: str = "Acme Tools", email: str | None = None) -> tuple[str, dict[str, str]]:
    """A pending seller; returns (seller id, its auth headers)."""
    response = client.post("/v1/sellers", json={
        "name": name, "email": email or unique_email(), "website": "https://acme.example",
        "description": "Tools for makers",
    })
    assert response.status_code == 201, response.text
    body = response.json()
    return body["seller"]["id"], bearer(body["api_key"])


def approved_seller(
    client: TestClient, operator: dict[str, str], name: str = "Acme Tools"
) -> tuple[str, dict[str, str]]:
    seller_id, headers = apply_seller(client, name)
    response = client.post(f"/v1/sellers/{seller_id}/approve", headers=operator)
    assert response.status_code == 200, response.text
    return seller_id, headers


def variant(sku: str, amount: int = 4999, *, name: str | None = None, currency: str = "USD",
            stock: int = 10, active: bool = True) -> dict[str, Any]:
    return {"sku": sku, "name": name or sku, "price": {"amount": amount, "currency": currency},
            "stock": stock, "active": active}


def product_body(name: str = "Widget Pro", *, currency: str = "USD", variants: list[dict[str, Any]] | None = None,
                 **extra: Any) -> dict[str, Any]:
    sku = f"SKU-{next(_counter)}"
    body: dict[str, Any] = {
        "name": name, "description": f"The {name}", "category": "Software", "tags": ["Tools"],
        "currency": currency, "variants": variants or [variant(f"{sku}-BASIC", 1999, name="Basic"),
                                                       variant(f"{sku}-PRO", 4999, name="Pro")],
    }
    body.update(extra)
    return body


def create_product(client: TestClient, headers: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    response = client.post("/v1/products", json=product_body(**kwargs), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def published_product(client: TestClient, headers: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    product = create_product(client, headers, **kwargs)
    response = client.post(f"/v1/products/{product['id']}/publish", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
