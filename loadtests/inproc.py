"""CPU per request of each hot endpoint, in one process, without HTTP: `python -m loadtests.inproc`.

The benchmark (bench.py) measures the whole machine, and on a shared two-core machine its
requests per second swing by a third between identical runs. This tool measures only what our
code costs: it builds the app the way the server does (PostgreSQL, Redis, the thread pool),
seeds it through the API, then calls the ASGI app directly, one request at a time, for each of
the benchmark's request kinds in its mix, and prints the process CPU time (every thread: the
event loop and the thread pool) per request of each kind, in microseconds, and the SQL
statements per checkout (`sql_statements_per_request` of both checkout routes). Compare two
versions of the code by running it from each checkout, alternating; other people's load
changes these figures far less than it changes throughput.

It does not measure the HTTP server (uvicorn's parsing and writing) nor database time spent in
PostgreSQL's own processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REPO_ENV = {"PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)])}
BROWSER = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


async def _call(app: Any, method: str, path: str, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None,
                query: bytes = b"") -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through the ASGI app; returns (status, headers, body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *(headers or [])],
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {},
    }
    sent = False
    status = 0
    out_headers: dict[bytes, bytes] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            out_headers.update(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, out_headers, b"".join(chunks)


async def _measure(app: Any, seed: dict[str, Any], n: int) -> dict[str, float | None]:
    """Process CPU per request (µs, every thread) of each kind, sent one at a time in the
    benchmark's mix."""
    from loadtests.traffic import TOKEN_PARAM, cart_items, checkout_body, parse_mix

    MIX = parse_mix(os.environ.get("MARKETPLACE_MIX", ""))

    rng = random.Random(7)

    def key() -> list[tuple[bytes, bytes]]:
        return [(b"idempotency-key", uuid.uuid4().hex.encode())]

    async def listing() -> None:
        front = rng.choice(seed["storefronts"])
        status, _, _ = await _call(app, "GET", f"/v1/storefronts/{front['slug']}/products", query=b"limit=20")
        assert status == 200, status

    async def product() -> None:
        front = rng.choice(seed["storefronts"])
        item = rng.choice(front["products"])
        status, _, _ = await _call(app, "GET", f"/v1/storefronts/{front['slug']}/products/{item['product_id']}")
        assert status == 200, status

    async def checkout() -> None:
        front = rng.choice(seed["storefronts"])
        body = json.dumps(checkout_body(cart_items(front["products"], rng), rng)).encode()
        status, _, text = await _call(app, "POST", f"/v1/storefronts/{front['slug']}/orders", body, key())
        assert status == 201, (status, text[:300])

    tokens: list[str] = []

    async def redirect() -> None:
        link = rng.choice(seed["links"])
        # A browser's User-Agent: a request without one is counted as a bot and gets no token.
        status, headers, _ = await _call(app, "GET", f"/r/{link['code']}", headers=[(b"user-agent", BROWSER)])
        assert status == 302, status
        tokens.append(headers[b"location"].decode().split(f"{TOKEN_PARAM}=")[1].split("&")[0])

    async def referral_checkout() -> None:
        body = json.dumps(checkout_body(cart_items(seed["products"], rng), rng, tokens.pop())).encode()
        status, _, text = await _call(app, "POST", "/v1/checkout", body, key())
        assert status == 201, (status, text[:300])

    async def referral() -> None:
        await redirect()
        await referral_checkout()

    kinds: dict[str, Callable[[], Awaitable[None]]] = {
        "storefront listing": listing, "product": product, "checkout (storefront)": checkout,
        "/r/[code]": redirect, "checkout (referral)": referral_checkout,
    }
    for run in kinds.values():  # warm up: caches, prepared statements, pools
        for _ in range(10):
            await run() if run is not referral_checkout else await referral()
    # The benchmark's mix, interleaved as its users send it (checkouts lower the stock that the
    # listing shows, so measuring each kind alone would hide what they cost each other).
    mix = [("storefront listing", listing)] * MIX["browse"] + [("product", product)] * MIX["product"]
    mix += [("checkout (storefront)", checkout)] * MIX["checkout"] + [("referral", referral)] * MIX["referral"]
    cpu_us: dict[str, float] = dict.fromkeys(kinds, 0.0)
    counts: dict[str, int] = dict.fromkeys(kinds, 0)
    statements_before = _checkout_statements()
    for _ in range(n):
        name, run = rng.choice(mix)
        if name == "referral":
            parts = [("/r/[code]", redirect), ("checkout (referral)", referral_checkout)]
        else:
            parts = [(name, run)]
        for part, call in parts:
            started = time.process_time()
            await call()
            cpu_us[part] += 1e6 * (time.process_time() - started)
            counts[part] += 1
    total = sum(cpu_us.values()) / sum(counts.values())
    statements, checkouts = (after - before for after, before in zip(_checkout_statements(), statements_before,
                                                                    strict=True))
    return {**{name: round(cpu_us[name] / counts[name]) for name in kinds if counts[name]},
            "all requests": round(total),
            "statements per checkout": round(statements / checkouts, 2) if checkouts else None}


def _checkout_statements() -> tuple[float, float]:
    """(SQL statements, requests) of both checkout routes so far, from the app's own counter
    (`sql_statements_per_request`, the one the benchmark reads)."""
    from kernel.metrics import REQUEST_STATEMENTS

    routes = ("/v1/storefronts/{slug}/orders", "/v1/checkout")
    totals = {"_sum": 0.0, "_count": 0.0}
    for metric in REQUEST_STATEMENTS.collect():
        for sample in metric.samples:
            suffix = sample.name[len(metric.name):]
            if suffix in totals and sample.labels.get("method") == "POST" and sample.labels.get("route") in routes:
                totals[suffix] += sample.value
    return totals["_sum"], totals["_count"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="requests (the mix of MARKETPLACE_MIX, as bench.py)")
    parser.add_argument("--database", default=os.environ.get("INPROC_DB", "marketplace_inproc"))
    args = parser.parse_args(argv)

    from loadtests.bench import REDIS_URL, drop_database, recreate_database

    database_url = recreate_database(args.database)
    try:
        subprocess.run([sys.executable, "-m", "marketplace.cli", "db", "upgrade"], check=True, cwd=REPO,
                       env={**os.environ, "DATABASE_URL": database_url, **REPO_ENV}, stdout=subprocess.DEVNULL)
        os.environ.update({"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "CELERY_BROKER_URL": "memory://",
                           "RATE_LIMIT_PER_KEY_PER_MINUTE": "0", "RATE_LIMIT_PUBLIC_PER_MINUTE": "0",
                           "LOG_LEVEL": "WARNING"})
        import redis
        from fastapi.testclient import TestClient

        from loadtests.seed import seed_platform
        from marketplace.app import create_app

        redis.Redis.from_url(REDIS_URL).flushdb()
        app = create_app()
        with TestClient(app) as client:  # runs the lifespan; seeding goes through the API
            seed = seed_platform(database_url, "http://testserver", client=client)
            try:
                import uvloop

                runner: Callable[[Any], Any] = uvloop.run
            except ImportError:
                runner = asyncio.run
            results = runner(_measure(app, seed, args.n))
        print(json.dumps(results))
        return 0
    finally:
        drop_database(args.database)


if __name__ == "__main__":
    raise SystemExit(main())
