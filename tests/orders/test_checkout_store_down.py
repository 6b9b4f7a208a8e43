"""A checkout whose order is committed answers 201 with it even when the store (Redis) is gone: the
funnel counters written after the commit are best effort. Found by `bench --chaos`
(loadtests/chaos.py): while its Redis restarted, committed orders were answered 500."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, stock_of, worked_example


class GoneStore:
    """A store whose server is gone: every call fails, as Redis's client does while it restarts."""

    def __getattr__(self, name: str) -> Any:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise redis.ConnectionError("Redis is gone")
        return fail


@pytest.mark.parametrize("slug", ["a-store", None], ids=["storefront", "outside-a-storefront"])
def test_a_committed_order_is_answered_201_while_the_store_is_down(
    client: TestClient, operator: dict[str, str], env: Backend, monkeypatch: pytest.MonkeyPatch, slug: str | None
) -> None:
    world = worked_example(client, operator)
    before = stock_of(env, world, "X-PRO")
    monkeypatch.setattr(env.settings, "rate_limit_per_key_per_minute", 0)  # limits live in the store too
    monkeypatch.setattr(env.settings, "rate_limit_public_per_minute", 0)
    monkeypatch.setitem(env.runtime.__dict__, "store", GoneStore())

    placed = checkout(client, slug, cart(world, ("X-PRO", 2)), key="store-down-key-1")

    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert stock_of(env, world, "X-PRO") == before - 2
    # The buyer's retry with the same key gets the same order back, still without the store.
    again = checkout(client, slug, cart(world, ("X-PRO", 2)), key="store-down-key-1")
    assert ok(again, 201)["id"] == order["id"] and again.headers["idempotent-replayed"] == "true"
    assert stock_of(env, world, "X-PRO") == before - 2
