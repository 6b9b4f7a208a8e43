"""Storefront buyers on the hot order path (Locust, `FastHttpUser`).

    MARKETPLACE_SEED_FILE=seed.json locust -f loadtests/locustfile.py --headless -u 32 -r 32 -t 30s \\
        --host http://127.0.0.1:8000

The seed file comes from `python -m loadtests.seed` (see loadtests/README.md). What a user does,
weighted like a market maker's campaign (most visitors arrive ready to buy):

* browse a storefront's listing  `GET /v1/storefronts/{slug}/products`          name "storefront listing"
* view one of its products       `GET /v1/storefronts/{slug}/products/{id}`     name "product"
* check out a 1-4 line cart across the storefront's sellers with a fresh
  Idempotency-Key                `POST /v1/storefronts/{slug}/orders`           name "checkout"
* arrive through a referral link `GET /r/{code}` (302, not followed), then check out outside any
  storefront with the link's attribution token  `POST /v1/checkout`            name "checkout"
* now and then retry a checkout with the same key and body (a buyer's double click, a proxy
  retry): the same order must come back, marked `Idempotent-Replayed`         name "checkout retry"

Both checkout endpoints share the request name "checkout": the benchmark (loadtests/bench.py)
reads orders per second and latency percentiles from that row of Locust's CSV.

Environment:
* MARKETPLACE_SEED_FILE  the seed JSON (required)
* MARKETPLACE_MIX        task weights, default "browse=1,product=1,checkout=6,referral=2"
* MARKETPLACE_THINK_S    think time between tasks in seconds, "min,max" (default "0,0": a closed
                         loop, each user sends its next request when the previous one answers)
* MARKETPLACE_RETRY_PCT  percent of checkouts retried with the same key (default 2)
* MARKETPLACE_REQUEST_LOG  a file to append one line per request to (`R <end time> <0|1 failed>
                         <name> <why: status, 0 for no answer, or exception class; ->`) and one per order
                         answered 201 (`O <end time> <Idempotency-Key> <order id>`), as they
                         happen: `bench --chaos` reads it to count failures per fault window and
                         to find every order a client saw in the database (loadtests/chaos.py)
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from locust import between, constant, events, task
from locust.contrib.fasthttp import FastHttpUser

# Locust imports this file by path: make the repository importable for the shared helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loadtests.traffic import (
    CHECKOUT,
    TOKEN_PARAM,
    cart_items,
    checkout_body,
    load_seed,
    parse_mix,
)


def think_time() -> Any:
    low, _, high = os.environ.get("MARKETPLACE_THINK_S", "0,0").partition(",")
    lo, hi = float(low or 0), float(high or low or 0)
    return constant(lo) if hi <= lo else between(lo, hi)


SEED = load_seed() if os.environ.get("MARKETPLACE_SEED_FILE") else {}
MIX = parse_mix(os.environ.get("MARKETPLACE_MIX", ""))
RETRY_PCT = float(os.environ.get("MARKETPLACE_RETRY_PCT", "2"))
# Line-buffered (each line is written when it ends, so it is never closed): the chaos bench
# reads it during the load (has a checkout been answered since Redis came back?).
REQUEST_LOG = open(os.environ["MARKETPLACE_REQUEST_LOG"], "a", buffering=1) \
    if os.environ.get("MARKETPLACE_REQUEST_LOG") else None  # noqa: SIM115 (open for the whole run)


if REQUEST_LOG is not None:
    @events.request.add_listener
    def _log_request(name: str, exception: BaseException | None = None, **_kwargs: Any) -> None:
        assert REQUEST_LOG is not None
        # Why it failed, in a word: the status ("500"; "0": no answer, the connection was reset or
        # refused), or the exception's class.
        found = re.search(r"(?:answered |got |code=)(\d+)", str(exception)) if exception is not None else None
        reason = "-" if exception is None else found.group(1) if found else type(exception).__name__
        REQUEST_LOG.write(f"R {time.time():.3f} {int(exception is not None)} {name.replace(' ', '_')} {reason}\n")


class StorefrontBuyer(FastHttpUser):
    """One buyer at a time: a storefront visitor, sometimes arriving through a referral link."""

    wait_time = think_time()
    # Keep the connection open between requests, as a browser or an affiliate's backend would.
    connection_timeout = 10.0
    network_timeout = 30.0

    def on_start(self) -> None:
        if not SEED:
            raise RuntimeError("set MARKETPLACE_SEED_FILE to the JSON written by `python -m loadtests.seed`")
        self.rng = random.Random()
        self.storefronts: list[dict[str, Any]] = SEED["storefronts"]
        self.products: list[dict[str, Any]] = SEED["products"]
        self.links: list[dict[str, Any]] = SEED["links"]

    def _storefront(self) -> dict[str, Any]:
        return self.rng.choice(self.storefronts)

    @task(MIX["browse"])
    def browse(self) -> None:
        front = self._storefront()
        self.client.get(f"/v1/storefronts/{front['slug']}/products?limit=20", name="storefront listing")

    @task(MIX["product"])
    def view_product(self) -> None:
        front = self._storefront()
        product = self.rng.choice(front["products"])
        self.client.get(f"/v1/storefronts/{front['slug']}/products/{product['product_id']}", name="product")

    @task(MIX["checkout"])
    def storefront_checkout(self) -> None:
        front = self._storefront()
        body = checkout_body(cart_items(front["products"], self.rng), self.rng)
        self._checkout(f"/v1/storefronts/{front['slug']}/orders", body)

    @task(MIX["referral"])
    def referral_checkout(self) -> None:
        link = self.rng.choice(self.links)
        token = None
        with self.client.get(f"/r/{link['code']}", name="/r/[code]", allow_redirects=False,
                             catch_response=True) as response:
            if response.status_code != 302:
                response.failure(f"expected a 302 redirect, got {response.status_code}")
                return
            location = response.headers.get("location") or ""
            tokens = parse_qs(urlsplit(location).query).get(TOKEN_PARAM) or []
            token = tokens[0] if tokens else None
            if not token:
                response.failure(f"no {TOKEN_PARAM} token in the redirect to {location!r}")
                return
            response.success()
        # Outside a storefront: the click attributes the order, the cart may hold any seller's items.
        self._checkout("/v1/checkout", checkout_body(cart_items(self.products, self.rng), self.rng, token))

    def _checkout(self, path: str, body: dict[str, Any]) -> None:
        key = uuid.uuid4().hex
        headers = {"Idempotency-Key": key}
        with self.client.post(path, json=body, headers=headers, name=CHECKOUT, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"checkout answered {response.status_code}: {(response.text or '')[:300]}")
                return
            order = response.json()
            if not order.get("id") or order["total"]["amount"] <= 0:
                response.failure(f"checkout returned no order: {(response.text or '')[:300]}")
                return
            response.success()
        if REQUEST_LOG is not None:
            REQUEST_LOG.write(f"O {time.time():.3f} {key} {order['id']}\n")
        if self.rng.random() * 100 < RETRY_PCT:
            with self.client.post(path, json=body, headers=headers, name="checkout retry",
                                  catch_response=True) as retry:
                if retry.status_code != 201 or retry.json().get("id") != order["id"]:
                    retry.failure(f"retry with the same key did not return order {order['id']}: "
                                  f"{retry.status_code} {(retry.text or '')[:200]}")
                elif retry.headers.get("idempotent-replayed") != "true":
                    retry.failure("retry not marked Idempotent-Replayed")
                else:
                    retry.success()
