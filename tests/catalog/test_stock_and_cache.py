"""What checkout relies on (prices from the catalog, reservations that cannot oversell) and the
read cache (every change visible on the next read, on real Redis too)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from catalog.service import load_variants_for_checkout, release_stock, reserve_stock
from catalog.service.cache import cache_key
from kernel.db import session_scope
from tests.catalog.conftest import approved_seller, create_product, published_product, variant
from tests.conftest import Backend


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def stock_of(client: TestClient, headers: dict[str, str], product: dict[str, Any], index: int = 0) -> int:
    stock: int = client.get(f"/v1/products/{product['id']}", headers=headers).json()["variants"][index]["stock"]
    return stock


def test_load_variants_for_checkout_prices_from_the_database(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    seller_id, headers = approved_seller(client, operator, "Alice")
    live = published_product(client, headers, name="Live", variants=[variant("LIVE-1", 4999, name="Pro", stock=3),
                                                                      variant("LIVE-2", 100, active=False)])
    draft = create_product(client, headers, name="Draft", variants=[variant("DRAFT-1", 700)])
    wanted = [_uuid(v["id"]) for v in live["variants"]] + [_uuid(draft["variants"][0]["id"]), uuid.uuid4()]
    with session_scope(env.runtime.sessions) as session:
        found = load_variants_for_checkout(session, wanted)
    assert set(found) == set(wanted[:3])  # an unknown id is simply absent
    pro = found[wanted[0]]
    assert (pro.price_amount, pro.currency, str(pro.seller_id), str(pro.product_id), pro.product_name,
            pro.variant_name, pro.sku, pro.stock, pro.orderable) == (
        4999, "USD", seller_id, live["id"], "Live", "Pro", "LIVE-1", 3, True)
    assert not found[wanted[1]].orderable and not found[wanted[1]].variant_active
    assert not found[wanted[2]].orderable and not found[wanted[2]].product_published
    client.post(f"/v1/sellers/{seller_id}/reject", json={"reason": "x"}, headers=operator)
    with session_scope(env.runtime.sessions) as session:
        assert not load_variants_for_checkout(session, wanted[:1])[wanted[0]].orderable


def test_reserve_and_release_stock(client: TestClient, operator: dict[str, str], env: Backend) -> None:
    _, headers = approved_seller(client, operator)
    product = published_product(client, headers, variants=[variant("RES-1", 100, stock=3)])
    variant_id = _uuid(product["variants"][0]["id"])
    with session_scope(env.runtime.sessions) as session:
        assert reserve_stock(session, variant_id, 2) is True
        assert reserve_stock(session, variant_id, 2) is False  # only 1 left: nothing taken
        assert reserve_stock(session, uuid.uuid4(), 1) is False
    assert stock_of(client, headers, product) == 1
    with session_scope(env.runtime.sessions) as session:
        release_stock(session, variant_id, 2)
    assert stock_of(client, headers, product) == 3
    with pytest.raises(ValueError), session_scope(env.runtime.sessions) as session:
        reserve_stock(session, variant_id, 0)


@pytest.mark.postgres_only
def test_concurrent_reservations_never_oversell(client: TestClient, operator: dict[str, str], env: Backend) -> None:
    """16 threads, each with its own session and transaction, race for 10 units, 3 times each."""
    _, headers = approved_seller(client, operator)
    product = published_product(client, headers, variants=[variant("HOT-1", 100, stock=10)])
    variant_id = _uuid(product["variants"][0]["id"])
    start = threading.Barrier(16)
    won: list[bool] = []
    lock = threading.Lock()

    def buyer() -> None:
        start.wait()
        for _ in range(3):
            with session_scope(env.runtime.sessions) as session:
                result = reserve_stock(session, variant_id, 1)
            with lock:
                won.append(result)

    threads = [threading.Thread(target=buyer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert won.count(True) == 10 and won.count(False) == 38
    assert stock_of(client, headers, product) == 0


@pytest.mark.postgres_only
def test_seller_stock_adjustment_races_with_checkout_without_losing_units(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    """A seller removing units while buyers reserve: every unit is either sold or removed, once."""
    _, headers = approved_seller(client, operator)
    product = published_product(client, headers, variants=[variant("RACE-1", 100, stock=20)])
    variant_id = _uuid(product["variants"][0]["id"])
    url = f"/v1/products/{product['id']}/variants/{variant_id}/stock"
    sold: list[bool] = []

    def buyer() -> None:
        for _ in range(10):
            with session_scope(env.runtime.sessions) as session:
                sold.append(reserve_stock(session, variant_id, 1))

    threads = [threading.Thread(target=buyer) for _ in range(2)]
    for thread in threads:
        thread.start()
    removed = sum(5 for _ in range(3) if client.post(url, json={"delta": -5}, headers=headers).status_code == 200)
    for thread in threads:
        thread.join()
    assert sold.count(True) + removed + stock_of(client, headers, product) == 20
    assert stock_of(client, headers, product) >= 0


def test_price_change_is_visible_on_the_next_read(client: TestClient, operator: dict[str, str], env: Backend) -> None:
    """Product reads are cached (Redis on the PostgreSQL backend); every change drops the entry."""
    _, headers = approved_seller(client, operator)
    product = published_product(client, headers, variants=[variant("PRICE-1", 1000, stock=5)])
    pid, vid = product["id"], product["variants"][0]["id"]
    for url, hdrs in ((f"/v1/products/{pid}", headers), (f"/v1/catalog/products/{pid}", operator)):
        assert client.get(url, headers=hdrs).json()["variants"][0]["price"]["amount"] == 1000
    assert env.runtime.store.get(cache_key(_uuid(pid))) is not None  # the read filled the cache
    if env.settings.redis_url:  # really in Redis, not in this process
        assert redis.Redis.from_url(env.settings.redis_url).exists(cache_key(_uuid(pid))) == 1

    client.patch(f"/v1/products/{pid}/variants/{vid}", json={"price": {"amount": 1250, "currency": "USD"}},
                 headers=headers)
    assert env.runtime.store.get(cache_key(_uuid(pid))) is None  # dropped on commit
    assert client.get(f"/v1/catalog/products/{pid}", headers=operator).json()["variants"][0]["price"] == {
        "amount": 1250, "currency": "USD"}
    assert client.get(f"/v1/products/{pid}", headers=headers).json()["variants"][0]["price"]["amount"] == 1250

    changes = [
        lambda: client.patch(f"/v1/products/{pid}", json={"name": "Renamed"}, headers=headers),
        lambda: client.post(f"/v1/products/{pid}/variants/{vid}/stock", json={"delta": -2}, headers=headers),
        lambda: client.post(f"/v1/products/{pid}/variants", json=variant("PRICE-2", 900), headers=headers),
    ]
    for change in changes:
        client.get(f"/v1/catalog/products/{pid}", headers=operator)  # cached again
        assert change().status_code in (200, 201)
    final = client.get(f"/v1/catalog/products/{pid}", headers=operator).json()
    assert (final["name"], final["variants"][0]["stock"], final["from_price"]["amount"], len(final["variants"])) == (
        "Renamed", 3, 900, 2)
    client.post(f"/v1/products/{pid}/unpublish", headers=headers)
    assert client.get(f"/v1/catalog/products/{pid}", headers=operator).status_code == 404


def test_checkout_reservations_drop_the_cached_stock(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    _, headers = approved_seller(client, operator)
    product = published_product(client, headers, variants=[variant("CACHE-1", 100, stock=4)])
    vid = _uuid(product["variants"][0]["id"])
    assert client.get(f"/v1/catalog/products/{product['id']}", headers=operator).json()["variants"][0]["stock"] == 4
    with session_scope(env.runtime.sessions) as session:
        assert reserve_stock(session, vid, 3)
    assert client.get(f"/v1/catalog/products/{product['id']}", headers=operator).json()["variants"][0]["stock"] == 1
    with session_scope(env.runtime.sessions) as session:
        release_stock(session, vid, 1)
    assert client.get(f"/v1/catalog/products/{product['id']}", headers=operator).json()["variants"][0]["stock"] == 2


def test_reservations_lower_the_cached_stock_and_keep_the_cached_product(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    """Stock is cached apart from the product: an order must not make the next listing rebuild
    the product from the database (loadtests/README.md), yet the next read shows its stock."""
    _, headers = approved_seller(client, operator)
    product = published_product(client, headers, variants=[variant("KEEP-1", 100, stock=9), variant("KEEP-2", 200)])
    pid, vid = _uuid(product["id"]), _uuid(product["variants"][0]["id"])
    url = f"/v1/catalog/products/{pid}"
    assert client.get(url, headers=operator).json()["variants"][0]["stock"] == 9
    cached = env.runtime.store.get(cache_key(pid))
    with session_scope(env.runtime.sessions) as session:
        assert reserve_stock(session, vid, 4)
        assert reserve_stock(session, vid, 1)  # two in one transaction: the lower level wins
    assert env.runtime.store.get(cache_key(pid)) == cached  # the product entry stayed
    read = client.get(url, headers=operator).json()
    assert [(v["stock"], v["in_stock"]) for v in read["variants"]] == [(4, True), (10, True)]
    seller_view = client.get(f"/v1/products/{pid}", headers=headers).json()["variants"][0]
    with session_scope(env.runtime.sessions) as session:
        assert load_variants_for_checkout(session, [vid])[vid].stock == seller_view["stock"] == 4
    with session_scope(env.runtime.sessions) as session:
        assert reserve_stock(session, vid, 4)
    assert client.get(url, headers=operator).json()["variants"][0]["in_stock"] is False
    with session_scope(env.runtime.sessions) as session:
        release_stock(session, vid, 2)
    assert env.runtime.store.get(cache_key(pid)) == cached
    assert client.get(url, headers=operator).json()["variants"][0]["stock"] == 2


def test_lowering_cached_stock_out_of_order_keeps_the_lower_level(env: Backend) -> None:
    """Two reservations' post-commit writes may arrive in either order: the lower (later) level
    stays on Redis; other stores drop the level instead (the next read rebuilds it)."""
    from datetime import UTC, datetime

    from catalog.service import cache
    from kernel.cache import RedisStore

    store = env.runtime.store
    pid, vid, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = datetime(2030, 1, 1, tzinfo=UTC)
    cache.write_stock(store, pid, {vid: cache.StockLevel(10, at), other: cache.StockLevel(3, at)}, 60)
    assert cache.read(store, pid)[1] == {vid: cache.StockLevel(10, at), other: cache.StockLevel(3, at)}
    pid2, vid2 = uuid.uuid4(), uuid.uuid4()
    cache.write_stock(store, pid2, {vid2: cache.StockLevel(5, at)}, 60)
    cache.lower(store, {pid: {vid: cache.StockLevel(6, at)}, pid2: {vid2: cache.StockLevel(4, at)}})
    cache.lower(store, {pid: {vid: cache.StockLevel(8, at), uuid.uuid4(): cache.StockLevel(1, at)}})
    levels = cache.read(store, pid)[1]
    if isinstance(store, RedisStore):
        assert levels == {vid: cache.StockLevel(6, at), other: cache.StockLevel(3, at)}
        assert cache.read(store, pid2)[1] == {vid2: cache.StockLevel(4, at)}
    else:
        assert levels is None and cache.read(store, pid2)[1] is None
    cache.lower(store, {uuid.uuid4(): {vid: cache.StockLevel(1, at)}})  # no entry: nothing created
    cache.delete(store, [pid], stock_only=True)
    assert cache.read(store, pid) == (None, None)


def test_a_cached_read_does_not_touch_the_product_tables(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    _, headers = approved_seller(client, operator)
    product = published_product(client, headers)
    client.get(f"/v1/catalog/products/{product['id']}", headers=operator)
    statements: list[str] = []

    from sqlalchemy import event

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(env.runtime.engine, "before_cursor_execute", record)
    try:
        assert client.get(f"/v1/catalog/products/{product['id']}", headers=operator).status_code == 200
    finally:
        event.remove(env.runtime.engine, "before_cursor_execute", record)
    assert statements and not [s for s in statements if "products" in s or "variants" in s]


class BrokenStore:
    """A store whose server is gone: every call fails."""

    def __getattr__(self, name: str) -> Any:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise redis.ConnectionError("Redis is gone")
        return fail


def test_reads_and_writes_work_when_the_cache_is_down(
    client: TestClient, operator: dict[str, str], env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = approved_seller(client, operator)
    product = published_product(client, headers)
    monkeypatch.setattr(env.settings, "rate_limit_per_key_per_minute", 0)  # limits live in the store too
    monkeypatch.setitem(env.runtime.__dict__, "store", BrokenStore())
    vid = product["variants"][0]["id"]
    assert client.get(f"/v1/catalog/products/{product['id']}", headers=operator).status_code == 200
    response = client.patch(f"/v1/products/{product['id']}/variants/{vid}",
                            json={"price": {"amount": 777, "currency": "USD"}}, headers=headers)
    assert response.status_code == 200
    assert client.get(f"/v1/products/{product['id']}", headers=headers).json()["variants"][0]["price"]["amount"] == 777
