"""Two server processes never show two truths: `marketplace serve --workers 2` on PostgreSQL with
no REDIS_URL (so no shared cache), a seller changes a price and the stock sells out, and every
read afterwards, whichever process answers it, shows the new price and the new stock.

(On the embedded SQLite default `serve` runs one process whatever `--workers` says, so the case
of several processes without a shared cache exists on PostgreSQL.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from kernel.auth import Role
from tests.affiliates.conftest import Market, ok
from tests.conftest import Backend, bearer, issue_key
from tests.embedded_server import embedded_server

pytestmark = pytest.mark.postgres_only

READS = 40  # per URL; each on a new connection, so both processes answer some of them


def _reads(base_url: str, url: str, headers: dict[str, str]) -> list[tuple[int, int]]:
    """(price, stock) of the first variant, as READS fresh connections see it."""
    seen = []
    for _ in range(READS):
        response = httpx.get(f"{base_url}{url}", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        first = body["variants"][0]
        seen.append((first["price"]["amount"], first["stock"]))
    return seen


def test_two_server_processes_without_redis_show_the_new_price_and_stock_on_every_read(
    env: Backend, tmp_path: Path
) -> None:
    operator = bearer(issue_key(env, Role.OPERATOR))
    served_env = {"DATABASE_URL": env.settings.database_url}
    # Two processes each import the app: on a machine shared with other jobs that is past 120 s.
    with embedded_server(tmp_path, start_timeout_s=300, args=["--workers", "2"], env=served_env) as served, \
            httpx.Client(base_url=served.base_url, timeout=10) as client:
        market = Market(client, operator)  # type: ignore[arg-type]
        seller = market.seller("Northwind")
        [item] = market.product(seller, 2500)
        ok(client.post(f"/v1/products/{item.product_id}/variants/{item.variant_id}/stock",
                       headers=seller.headers, json={"set": 7}))
        program = market.program(seller, {"default": {"bps": 800}})
        affiliate = market.affiliate("Guild")
        market.join(affiliate, program)
        slug = market.storefront(affiliate, item)
        urls = [(f"/v1/products/{item.product_id}", seller.headers),
                (f"/v1/catalog/products/{item.product_id}", operator),
                (f"/v1/storefronts/{slug}/products/{item.product_id}", {})]
        for url, headers in urls:  # both processes have read (and cached) the old truth
            assert set(_reads(served.base_url, url, headers)) == {(2500, 7)}

        ok(client.patch(f"/v1/products/{item.product_id}/variants/{item.variant_id}", headers=seller.headers,
                        json={"price": {"amount": 3900, "currency": "USD"}}))
        order = ok(client.post(f"/v1/storefronts/{slug}/orders", headers={"Idempotency-Key": "sell-out"}, json={
            "items": [{"variant_id": item.variant_id, "quantity": 7}],
            "buyer": {"email": "bea@example.com", "name": "Bea Buyer"},
            "shipping_address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
                                 "country": "US"},
        }), 201)
        assert order["total"]["amount"] == 7 * 3900  # checkout charges the new price

        for url, headers in urls:
            assert set(_reads(served.base_url, url, headers)) == {(3900, 0)}, url
