"""What the load test's buyers send, without Locust (importing Locust monkey-patches the
process with gevent, so tests and tools import these helpers from here)."""

from __future__ import annotations

import json
import os
import random
from typing import Any

CHECKOUT = "checkout"
TOKEN_PARAM = "mk_ref"
BUYERS = 20_000  # distinct buyer e-mails: repeat buyers and first orders both happen
ADDRESS = {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


def load_seed() -> dict[str, Any]:
    path = os.environ.get("MARKETPLACE_SEED_FILE")
    if not path:
        raise RuntimeError("set MARKETPLACE_SEED_FILE to the JSON written by `python -m loadtests.seed`")
    with open(path) as handle:
        seed: dict[str, Any] = json.load(handle)
    return seed


def parse_mix(text: str) -> dict[str, int]:
    mix = {"browse": 1, "product": 1, "checkout": 6, "referral": 2}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition("=")
        if name not in mix:
            raise ValueError(f"unknown task {name!r} in MARKETPLACE_MIX (known: {', '.join(mix)})")
        mix[name] = int(weight)
    return mix


def cart_items(products: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """1-4 lines, each a different product (so usually several sellers), a random level, 1-3 units."""
    picked = rng.sample(products, k=min(len(products), rng.randint(1, 4)))
    return [{"variant_id": rng.choice(p["variant_ids"]), "quantity": rng.randint(1, 3)} for p in picked]


def checkout_body(items: list[dict[str, Any]], rng: random.Random, token: str | None = None) -> dict[str, Any]:
    n = rng.randrange(BUYERS)
    body: dict[str, Any] = {
        "items": items,
        "buyer": {"email": f"buyer{n}@shoppers.example", "name": f"Buyer {n}"},
        "shipping_address": ADDRESS,
    }
    if token is not None:
        body["attribution_token"] = token
    return body
