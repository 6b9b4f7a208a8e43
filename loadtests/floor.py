"""The floor: a server that sends exactly the SQL statements the real one sends, and nothing else.

`python -m loadtests.bench` runs it beside the real API, under the same Locust load, alternating,
and reports `ratio_to_floor` = real orders/s / floor orders/s (issue 18, item 1). What the real
server costs above this floor is what our code (validation, rules, framework) costs; what the
floor itself reaches is what the machine, the database and the driver allow.

Two parts:

* `capture` (`python -m loadtests.floor capture ...`, run by the bench once the platform is
  seeded): builds the real app in process, exactly as a server worker does, against the seeded
  database, and sends one real request of each kind the locustfile sends (a storefront listing,
  a product, a referral redirect with Locust's User-Agent and cookie, one storefront checkout per
  storefront, one referral checkout), recording with a SQLAlchemy `before_cursor_execute`
  listener every statement each sends (text, parameters, cursor kind, autocommit or not) and the
  response. Listing, product and redirect are captured on the second request, as Locust's users
  repeat them (caches warm, the visitor already known: the steady state). Checkouts are captured
  with one line per seller, so each seller has a template line (its commissions, its month-to-date
  counter row).

* `create_app` (served by `uvicorn loadtests.floor:create_app --factory`, the real server's
  command line and worker count): a raw ASGI app that, per request, replays the captured
  statements of its kind through the same path as the real server: a SQLAlchemy engine from
  `kernel.db.make_engine` with the same pool settings (`DB_POOL_SIZE`, `DB_MAX_OVERFLOW`),
  autocommit where the real request was (`kernel.db.autocommit_engine`), `exec_driver_sql` on a
  `psycopg.RawCursor` for the statements the real server sends that way (`kernel.pgsql`), from
  anyio's thread pool as FastAPI runs sync handlers. No validation, no pricing, no commission
  rules, no Redis, no response model: the captured response, with the new order's id.

  A checkout's parameters keep their captured shape, with fresh values: the request's
  Idempotency-Key, buyer and cart (variant ids and quantities, so stock is really reserved, on
  the variants the load picks, with the lock contention they cause), a new order id and key row
  id, `now`, and the order's rows (order, one sub-order per seller, one line per cart line,
  the commissions of that seller's template line, the month-to-date rows of the cart's sellers)
  rebuilt from the template rows by seller. The amounts are the template's: no rule computes
  them. So the floor writes to a scratch database of its own (a copy of the seeded one, made by
  the bench): its orders do not add up and would fail the audit of the real run. Stock is
  conserved there all the same (each line holds the units its statement reserved), and the
  bench checks it (`floor_oversold`).

  A retried checkout (same key) finds its key in the first statement, as the real one does, and
  answers the captured response with that order's id, marked `Idempotent-Replayed` (the
  locustfile checks it); the real server reads the stored order instead (retries are not counted
  in orders per second).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
# Listing, product, redirect: the second request of each is the template (steady state).
STOREFRONT_CHECKOUT = "storefront checkout"
REFERRAL_CHECKOUT = "referral checkout"


@dataclass
class Statement:
    sql: str
    params: Any  # a tuple (PostgreSQL `$n`, on a RawCursor) or a dict (psycopg `%(name)s`)
    raw: bool  # sent on a psycopg.RawCursor (kernel.pgsql.driver_execute)
    many: bool


@dataclass
class Captured:
    """One real request: what it sent and what it answered."""

    statements: list[Statement]
    autocommit: bool
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    # Checkouts only: what the request carried and what it made, to put fresh values in their place.
    key: str | None = None
    buyer: dict[str, str] = field(default_factory=dict)
    order_id: str | None = None
    key_row_id: uuid.UUID | None = None


# --------------------------------------------------------------------------------------------
# capture


def _locust_user_agent() -> str:
    """The User-Agent Locust's FastHttpUser sends (geventhttpclient's default): the redirect
    treats it as it treats the load's visitors."""
    import geventhttpclient

    return f"python/gevent-http-client-{geventhttpclient.__version__}"


def _one_line_per_seller(products: list[dict[str, Any]], seller_of: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for product in products:
        variant = product["variant_ids"][0]
        if seller_of[variant] not in seen:
            seen.add(seller_of[variant])
            items.append({"variant_id": variant, "quantity": 1})
    return items


def capture(database_url: str, seed: dict[str, Any]) -> dict[str, Any]:
    """Send one real request of each kind through the real app (in process, as a server worker
    builds it) and record the statements each sends. Returns the templates `create_app` serves."""
    from fastapi.testclient import TestClient
    from psycopg import RawCursor
    from sqlalchemy import event, text
    from sqlalchemy.engine import Engine

    from kernel.db import make_engine
    from loadtests.traffic import ADDRESS, TOKEN_PARAM
    from marketplace.app import create_app as create_real_app

    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        seller_of = {str(v): str(s) for v, s in conn.execute(text("SELECT id, seller_id FROM variants"))}

    recorded: list[Statement] = []
    autocommit: list[bool] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        recorded.append(Statement(statement, parameters, isinstance(cursor, RawCursor), executemany))
        autocommit.append(bool(conn.connection.driver_connection.autocommit))

    templates: dict[str, Any] = {}
    agent = _locust_user_agent()
    event.listen(Engine, "before_cursor_execute", listen)
    try:
        with TestClient(create_real_app(), headers={"user-agent": agent}) as client:

            def record(name: str, method: str, path: str, **kwargs: Any) -> Captured:
                recorded.clear()
                autocommit.clear()
                response = client.request(method, path, follow_redirects=False, **kwargs)
                assert response.status_code in (200, 201, 302), (path, response.status_code, response.text[:300])
                keep = ("content-type", "location")
                templates[name] = found = Captured(
                    list(recorded), all(autocommit), response.status_code,
                    [(k, v) for k, v in response.headers.items() if k in keep], response.content,
                )
                return found

            front = seed["storefronts"][0]
            link = seed["links"][0]
            for _ in range(2):  # the second of each is the template: caches warm, the visitor known
                record("listing", "GET", f"/v1/storefronts/{front['slug']}/products?limit=20")
                product = front["products"][0]["product_id"]
                record("product", "GET", f"/v1/storefronts/{front['slug']}/products/{product}")
                redirect = record("redirect", "GET", f"/r/{link['code']}")
            location = dict(redirect.headers)["location"]
            token = re.search(rf"{TOKEN_PARAM}=([^&]+)", location)
            assert token is not None, location

            def checkout(name: str, path: str, products: list[dict[str, Any]], extra: dict[str, Any]) -> None:
                key = uuid.uuid4().hex
                buyer = {"email": f"floor-{key[:8]}@shoppers.example", "name": "Floor Template"}
                body = {"items": _one_line_per_seller(products, seller_of), "buyer": buyer,
                        "shipping_address": ADDRESS, **extra}
                found = record(name, "POST", path, json=body, headers={"Idempotency-Key": key})
                found.key, found.buyer = key, buyer
                found.order_id = json.loads(found.body)["id"]
                with engine.connect() as conn:
                    found.key_row_id = conn.execute(text("SELECT id FROM idempotency_keys WHERE key = :k"),
                                                    {"k": key}).scalar_one()

            for _ in range(2):  # the second of each again: the storefront's cache warm
                for front in seed["storefronts"]:
                    checkout(f"{STOREFRONT_CHECKOUT} {front['slug']}", f"/v1/storefronts/{front['slug']}/orders",
                             front["products"], {})
                checkout(REFERRAL_CHECKOUT, "/v1/checkout", seed["products"], {"attribution_token": token.group(1)})
    finally:
        event.remove(Engine, "before_cursor_execute", listen)
        engine.dispose()
    return {"templates": templates, "seller_of": seller_of}


# --------------------------------------------------------------------------------------------
# replay


def _json_rows(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, str) and value.startswith("[{"):
        rows = json.loads(value)
        if isinstance(rows, list) and all(isinstance(row, dict) for row in rows):
            return rows
    return None


def _table_of(rows: list[dict[str, Any]]) -> str:
    row = rows[0]
    if "to_address" in row:
        return "mails"
    if "buyer_email" in row:
        return "orders"
    if "order_line_id" in row:
        return "commissions"
    if "variant_id" in row and "position" in row:
        return "lines"
    if "seller_share_released" in row:
        return "sub_orders"
    return "monthly"


class CheckoutReplay:
    """A captured checkout with every parameter classified once: a constant, or a value each
    request gives afresh (its key, buyer, cart, now, new ids, the order's rows)."""

    def __init__(self, captured: Captured, seller_of: dict[str, str]) -> None:
        self.captured = captured
        self.seller_of = {uuid.UUID(v): s for v, s in seller_of.items()}
        self.kinds: list[dict[Any, tuple[str, Any]]] = []
        self.rows: dict[str, list[dict[str, Any]]] = {}
        assert captured.order_id is not None and captured.key is not None
        fresh = {uuid.UUID(captured.order_id): "order_id", captured.key_row_id: "key_row_id"}
        write = next(s for s in captured.statements if "json_populate_recordset" in s.sql)
        ids = [p for p in self._values(write) if isinstance(p, list) and p and isinstance(p[0], uuid.UUID)]
        self.cart_ids = ids[0]
        self.captured_now = next(p for p in self._values(write) if isinstance(p, datetime))
        for statement in captured.statements:
            kinds: dict[Any, tuple[str, Any]] = {}
            for position, value in self._items(statement):
                rows = _json_rows(value)
                if value == captured.key:
                    kinds[position] = ("key", None)
                elif value == captured.buyer["email"]:
                    kinds[position] = ("email", None)
                elif value == captured.buyer["name"]:
                    kinds[position] = ("name", None)
                elif isinstance(value, uuid.UUID) and value in fresh:
                    kinds[position] = (fresh[value], None)
                elif value == self.cart_ids:
                    kinds[position] = ("ids", None)
                elif isinstance(value, list) and statement is write and value and isinstance(value[0], int):
                    kinds[position] = ("qs", None)
                elif isinstance(value, datetime):
                    kinds[position] = ("time", value - self.captured_now)
                elif rows is not None and statement is write:
                    table = _table_of(rows)
                    self.rows[table] = rows
                    kinds[position] = ("rows", table)
            self.kinds.append(kinds)
        # Fail loudly if the checkout's write changed shape (the floor would replay stale values).
        missing = {"key", "ids", "qs", "order_id", "key_row_id", "rows"} - {
            kind for kinds in self.kinds for kind, _ in kinds.values()}
        if missing or {"orders", "sub_orders", "lines"} - set(self.rows):
            raise RuntimeError(f"the captured checkout's parameters lack {sorted(missing)} or the order's rows "
                               f"(found tables {sorted(self.rows)}): has the checkout's write changed shape?")
        self.sub_by_seller = self._by_seller("sub_orders")
        self.line_by_seller = self._by_seller("lines")
        self.monthly_by_seller = self._by_seller("monthly")
        self.commissions_by_line: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows.get("commissions", []):
            self.commissions_by_line.setdefault(row["order_line_id"], []).append(row)
        self.body = captured.body.decode()

    def _by_seller(self, table: str) -> dict[str, dict[str, Any]]:
        return {row["seller_id"]: row for row in self.rows.get(table, [])}

    @staticmethod
    def _items(statement: Statement) -> Iterator[tuple[Any, Any]]:
        params = statement.params
        return iter(params.items()) if isinstance(params, dict) else enumerate(params or ())

    def _values(self, statement: Statement) -> list[Any]:
        return [value for _, value in self._items(statement)]

    def order_rows(self, order_id: uuid.UUID, cart: list[tuple[uuid.UUID, int]], buyer: dict[str, str],
                   now: datetime) -> dict[str, str]:
        """The order's rows for this cart, each table's from its template rows (by seller), as
        the JSON parameters the write takes (orjson, as `orders.service.checkout_pg` writes them)."""
        stamp = now.isoformat()
        order = {**self.rows["orders"][0], "id": order_id, "buyer_email": buyer.get("email"),
                 "buyer_name": buyer.get("name"), "created_at": stamp}
        if order.get("status_token_hash"):  # unique: each order its own link, as the checkout makes it
            order["status_token_hash"] = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
        # The confirmation mail with the order's link (an outbox row in the same statement).
        mails = [{**row, "id": uuid.uuid4(), "to_address": buyer.get("email"), "created_at": stamp}
                 for row in self.rows.get("mails", ())]
        subs: dict[str, dict[str, Any]] = {}
        lines: list[dict[str, Any]] = []
        commissions: list[dict[str, Any]] = []
        first_line = self.rows["lines"][0]
        for position, (variant_id, quantity) in enumerate(cart):
            seller = self.seller_of.get(variant_id, first_line["seller_id"])
            sub = subs.get(seller)
            if sub is None:
                template = self.sub_by_seller.get(seller, self.rows["sub_orders"][0])
                sub = subs[seller] = {**template, "id": uuid.uuid4(), "order_id": order_id, "seller_id": seller,
                                      "created_at": stamp}
            template = self.line_by_seller.get(seller, first_line)
            line = {**template, "id": uuid.uuid4(), "order_id": order_id, "sub_order_id": sub["id"],
                    "position": position, "seller_id": seller, "variant_id": variant_id, "quantity": quantity}
            lines.append(line)
            commissions.extend({**row, "id": uuid.uuid4(), "order_id": order_id, "order_line_id": line["id"],
                                "sub_order_id": sub["id"], "seller_id": seller, "created_at": stamp}
                               for row in self.commissions_by_line.get(template["id"], ()))
        monthly = [self.monthly_by_seller[seller] for seller in subs if seller in self.monthly_by_seller]
        tables = {"orders": [order], "sub_orders": list(subs.values()), "lines": lines, "commissions": commissions,
                  "monthly": monthly, "mails": mails}
        return {name: orjson.dumps(rows).decode() for name, rows in tables.items()}

    def params(self, request: dict[str, Any], key: str, order_id: uuid.UUID, now: datetime) -> list[Any]:
        """Each statement's parameters for this request."""
        cart = sorted((uuid.UUID(item["variant_id"]), int(item["quantity"])) for item in request.get("items", ()))
        buyer = request.get("buyer") or {}
        values: dict[str, Any] = {
            "key": key, "email": buyer.get("email"), "name": buyer.get("name"), "order_id": order_id,
            "key_row_id": uuid.uuid4(), "ids": [v for v, _ in cart], "qs": [q for _, q in cart],
        }
        rows = self.order_rows(order_id, [(uuid.UUID(i["variant_id"]), int(i["quantity"]))
                                          for i in request.get("items", ())], buyer, now)
        out: list[dict[Any, Any] | tuple[Any, ...]] = []
        for statement, kinds in zip(self.captured.statements, self.kinds, strict=True):
            def value(position: Any, captured: Any, kinds: dict[Any, tuple[str, Any]] = kinds) -> Any:
                kind = kinds.get(position)
                if kind is None:
                    return captured
                name, extra = kind
                if name == "time":
                    return now + extra
                if name == "rows":
                    return rows[extra]
                return values[name]
            if isinstance(statement.params, dict):
                out.append({k: value(k, v) for k, v in statement.params.items()})
            else:
                out.append(tuple(value(i, v) for i, v in enumerate(statement.params or ())))
        return out


class Floor:
    """The floor's engine and templates (one per server process)."""

    def __init__(self, database_url: str, templates_path: str, pool_size: int, max_overflow: int) -> None:
        from kernel.db import autocommit_engine, make_engine

        with open(templates_path, "rb") as handle:
            loaded = pickle.load(handle)  # the bench wrote it, in its own temporary directory
        self.templates: dict[str, Captured] = loaded["templates"]
        self.engine = make_engine(database_url, pool_size=pool_size, max_overflow=max_overflow)
        self.autocommit = autocommit_engine(self.engine)
        self.checkouts = {name: CheckoutReplay(found, loaded["seller_of"]) for name, found in self.templates.items()
                          if name.startswith((STOREFRONT_CHECKOUT, REFERRAL_CHECKOUT))}

    @contextmanager
    def _connection(self, autocommit: bool) -> Iterator[Any]:
        if autocommit:
            with self.autocommit.connect() as conn:
                yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    def run(self, statements: list[Statement], params: list[Any], autocommit: bool) -> list[Any]:
        """Send the statements as the real request did; the first row of each (or None)."""
        from psycopg import RawCursor

        firsts = []
        with self._connection(autocommit) as conn:
            for statement, values in zip(statements, params, strict=True):
                if statement.raw:  # as kernel.pgsql.driver_execute sends it
                    driver = conn.connection.driver_connection
                    factory = driver.cursor_factory
                    driver.cursor_factory = RawCursor
                    try:
                        result = conn.exec_driver_sql(statement.sql, values)
                    finally:
                        driver.cursor_factory = factory
                else:
                    result = conn.exec_driver_sql(statement.sql, values)
                firsts.append(result.mappings().first() if result.returns_rows else None)
        return firsts

    def plain(self, name: str) -> tuple[int, list[tuple[str, str]], bytes]:
        found = self.templates[name]
        if found.statements:
            self.run(found.statements, [s.params for s in found.statements], found.autocommit)
        return found.status, found.headers, found.body

    def sends_sql(self, name: str) -> bool:
        return bool(self.templates[name].statements)

    def checkout(self, name: str, body: bytes, key: str) -> tuple[int, list[tuple[str, str]], bytes]:
        replay = self.checkouts[name]
        found = replay.captured
        order_id = uuid.uuid4()
        now = datetime.now(UTC)
        params = replay.params(orjson.loads(body), key, order_id, now)
        # The first statement looks the key up: a retry stops there (as the real one replays).
        first = self.run(found.statements[:1], params[:1], found.autocommit)[0]
        earlier = first.get("order_id") if first is not None else None
        if earlier is not None:
            text = replay.body.replace(str(found.order_id), str(earlier))
            return 201, [*found.headers, ("idempotent-replayed", "true")], text.encode()
        self.run(found.statements[1:], params[1:], found.autocommit)
        return found.status, found.headers, replay.body.replace(str(found.order_id), str(order_id)).encode()


Handler = Callable[[bytes, dict[bytes, bytes]], tuple[int, list[tuple[str, str]], bytes]]


def _route(floor: Floor, method: str, path: str) -> tuple[Handler, bool] | None:
    """The handler for a request, and whether it sends SQL (then it runs in the thread pool)."""
    parts = path.strip("/").split("/")
    plain = None
    if method == "GET" and len(parts) == 4 and parts[:2] == ["v1", "storefronts"] and parts[3] == "products":
        plain = "listing"
    elif method == "GET" and len(parts) == 5 and parts[:2] == ["v1", "storefronts"] and parts[3] == "products":
        plain = "product"
    elif method == "GET" and len(parts) == 2 and parts[0] == "r":
        plain = "redirect"
    if plain is not None:
        name = plain
        return (lambda _body, _headers: floor.plain(name)), floor.sends_sql(name)
    checkout = None
    if method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "storefronts"] and parts[3] == "orders":
        checkout = f"{STOREFRONT_CHECKOUT} {parts[2]}"
        if checkout not in floor.checkouts:
            checkout = next(n for n in floor.checkouts if n.startswith(STOREFRONT_CHECKOUT))
    elif method == "POST" and parts == ["v1", "checkout"]:
        checkout = REFERRAL_CHECKOUT
    if checkout is not None:
        name = checkout
        return (lambda body, headers: floor.checkout(name, body, headers.get(b"idempotency-key", b"").decode())), True
    return None


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def create_app() -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """The floor's ASGI app (`uvicorn loadtests.floor:create_app --factory`). Environment:
    DATABASE_URL (the floor's scratch database), FLOOR_TEMPLATES (the capture's pickle),
    DB_POOL_SIZE and DB_MAX_OVERFLOW (as the real server reads them)."""
    import anyio.to_thread

    floor = Floor(os.environ["DATABASE_URL"], os.environ["FLOOR_TEMPLATES"],
                  int(os.environ.get("DB_POOL_SIZE", "10")), int(os.environ.get("DB_MAX_OVERFLOW", "10")))

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    floor.engine.dispose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        route = _route(floor, scope["method"], scope["path"])
        if scope["path"] == "/readyz":
            status, headers, content = 200, [("content-type", "application/json")], b'{"status":"ready"}'
        elif route is None:
            status, headers, content = 404, [("content-type", "text/plain")], b"not on the floor"
        elif route[1]:
            # The real server runs its sync handlers in anyio's thread pool: so does the floor.
            status, headers, content = await anyio.to_thread.run_sync(route[0], body, dict(scope["headers"]))
        else:
            status, headers, content = route[0](body, dict(scope["headers"]))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers]
                    + [(b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="capture the floor's statement templates from the real app")
    parser.add_argument("command", choices=("capture",))
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seed", required=True, help="the seed JSON (loadtests.seed)")
    parser.add_argument("--out", required=True, help="where to write the templates (pickle)")
    args = parser.parse_args(argv)
    with open(args.seed) as handle:
        seed = json.load(handle)
    found = capture(args.database_url, seed)
    with open(args.out, "wb") as handle:
        pickle.dump(found, handle)
    for name, captured in found["templates"].items():
        print(f"[floor] {name}: {len(captured.statements)} statements"
              f"{'' if captured.autocommit else ' (in a transaction)'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    # Through the module's own name, so the templates pickle as loadtests.floor's classes.
    from loadtests.floor import main as floor_main

    raise SystemExit(floor_main())
