"""Redis down (stopped, restarting, unreachable): protections that need it step aside, a published
referral link still leads to its target, and whatever cannot work without it answers a 503
problem the client can retry, never an unexplained 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from kernel.cache import RedisStore
from tests.affiliates.conftest import Market
from tests.conftest import Backend

DEAD_REDIS = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there


@pytest.fixture
def redis_down(env: Backend) -> Iterator[None]:
    """The runtime's store pointed at a Redis that does not answer, as during an outage."""
    healthy = env.runtime.__dict__.get("store")
    env.runtime.__dict__["store"] = RedisStore(DEAD_REDIS)
    yield
    if healthy is None:
        env.runtime.__dict__.pop("store", None)
    else:
        env.runtime.__dict__["store"] = healthy


def test_a_referral_link_leads_to_its_target_uncounted_while_redis_is_down(
    market: Market, request: pytest.FixtureRequest
) -> None:
    seller = market.seller()
    market.product(seller, 10_000)
    program_id = market.program(seller, {"default": {"bps": 1000}})
    affiliate = market.affiliate("Newsletter")
    market.join(affiliate, program_id)
    link = market.link(affiliate)
    request.getfixturevalue("redis_down")
    response = market.client.get(f"/r/{link['code']}", follow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location == "https://partner.example/landing?x=1"  # the target as the affiliate set it
    assert "mk_ref" not in parse_qs(urlsplit(location).query)  # no click row stands behind a token
    assert "mk_ref" not in response.cookies
    assert response.headers["Cache-Control"] == "no-store"
    assert market.client.get("/r/no-such-code", follow_redirects=False).status_code == 404


def test_a_storefront_takes_an_order_and_shows_its_products_while_redis_is_down(
    market: Market, request: pytest.FixtureRequest
) -> None:
    """The funnel's counters and the caches step aside: browsing and buying go on, uncounted."""
    seller = market.seller()
    (item,) = market.product(seller, 10_000)
    program_id = market.program(seller, {"default": {"bps": 1000}})
    affiliate = market.affiliate("Guild")
    market.join(affiliate, program_id)
    slug = market.storefront(affiliate, item)
    request.getfixturevalue("redis_down")
    listing = market.client.get(f"/v1/storefronts/{slug}/products")
    assert listing.status_code == 200, listing.text
    assert market.client.get(f"/v1/storefronts/{slug}/products/{item.product_id}").status_code == 200
    body = {"items": [{"variant_id": item.variant_id, "quantity": 1}],
            "buyer": {"email": "bea@example.com", "name": "Bea Buyer"},
            "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    placed = market.client.post(f"/v1/storefronts/{slug}/orders", json=body, headers=key)
    assert placed.status_code == 201, placed.text
    assert placed.json()["total"]["amount"] == 10_000


def test_a_request_that_cannot_work_without_redis_is_a_503_problem_with_retry_after(
    env: Backend, client: TestClient, operator: dict[str, str], redis_down: None
) -> None:
    """Not an unexplained 500: a problem the client can act on (retry), logged as an outage."""

    @client.app.get("/__needs_redis")  # type: ignore[attr-defined]
    def needs_redis() -> None:
        env.runtime.store.ping()

    response = client.get("/__needs_redis")
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/service-unavailable")
    assert response.headers["Retry-After"] == "5"
    assert "Idempotency-Key" in response.json()["detail"]


def test_public_rate_limits_let_requests_through_while_redis_is_down(
    env: Backend, client: TestClient, redis_down: None
) -> None:
    assert env.runtime.settings.rate_limit_public_per_minute > 0  # the limit is on, its store is not
    assert client.get("/v1/storefront-directory").status_code == 200
