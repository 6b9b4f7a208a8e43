"""The product read cache: per product, two entries in `runtime.store` (Redis when configured).

* `catalog:product:{id}` holds the seller's full view of the product (`ProductOut`) plus the
  seller's name and status, so both the seller/operator read (`GET /v1/products/{id}`) and the
  public catalog and storefront reads are served without touching the database.
* `catalog:stock:{id}` holds each variant's stock level (and its row's `updated_at`). Reads lay it
  over the product entry, so the product entry's own stock figures are never shown.

Why two: stock changes on every order, everything else rarely. With one entry, every checkout
dropped the whole product (the listing shows stock), so nearly every storefront listing rebuilt
its products from the database (loadtests/README.md). Now a reservation only LOWERS the stock
levels it took, in place, and the product entry stays.

Invalidation, one entry point per kind of change, all applied once the transaction COMMITS, not
at flush (deleting before the commit would let a concurrent reader miss, read the old committed
row and cache it again):
* `invalidate_after_commit(session, product_ids)`: every catalog write (product, variant, price,
  stock set by the seller, seller status) drops both entries: the next read sees the change;
* `drop_stock_after_commit(session, product_ids)`: stock given back (a cancelled or refunded
  line) drops the stock entry only;
* `lower_stock_after_commit(session, {product_id: {variant_id: StockLevel}})`: a reservation
  writes the levels its own UPDATE returned, and only where the cached level is higher (Redis:
  atomically, in a Lua script), so two reservations whose post-commit writes arrive out of order
  cannot leave the higher, older level behind. Without Redis it simply drops the stock entry.
A rolled back transaction applies at its session's next commit or never: harmless either way.

What is left, bounded by the TTL (settings.catalog_cache_ttl_seconds) or corrected by the next
reservation of the variant: a reader that read the old row just before a commit and writes it
just after that commit's delete or lowering (then the level shown is too high until the next
reservation lowers it), and a reservation whose lowering is delayed past a later stock increase
and a reader's rebuild (too low until the TTL). Checkout never reads stock from here: it takes
stock with a conditional UPDATE on the locked row, so the cache cannot oversell.

The store failing (Redis down) never fails a request: reads fall back to the database, and a
failed write or delete is logged (the TTL then bounds the staleness).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog
from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.orm import Session

from catalog.schemas import ProductOut
from kernel.cache import RedisStore, Store, session_store

log = structlog.get_logger(__name__)

KEY_PREFIX = "catalog:product:"
STOCK_KEY_PREFIX = "catalog:stock:"
_DIRTY = "catalog_cache_dirty"  # product ids: drop both entries
_STOCK_DIRTY = "catalog_cache_stock_dirty"  # product ids: drop the stock entry
_LOWERED = "catalog_cache_lowered"  # product id -> {variant id -> StockLevel}: lower in place
_HOOKED = "catalog_cache_hooked"
# A field that every stock entry has, so a product whose variants are all gone still has an
# entry (an empty Redis hash does not exist).
_PRESENT = "_"


class CachedProduct(BaseModel):
    product: ProductOut
    seller_name: str
    seller_status: str


@dataclass(frozen=True, slots=True)
class StockLevel:
    """A variant's stock and its row's `updated_at` (reservations bump both)."""

    stock: int
    updated_at: datetime

    def encode(self) -> str:
        return f"{self.stock} {self.updated_at.isoformat()}"

    @classmethod
    def decode(cls, raw: bytes | str) -> StockLevel:
        text = raw.decode() if isinstance(raw, bytes) else raw
        stock, _, stamp = text.partition(" ")
        return cls(int(stock), datetime.fromisoformat(stamp))


StockLevels = dict[uuid.UUID, StockLevel]


def cache_key(product_id: uuid.UUID) -> str:
    return f"{KEY_PREFIX}{product_id}"


def stock_key(product_id: uuid.UUID) -> str:
    return f"{STOCK_KEY_PREFIX}{product_id}"


def _parse_product(raw: bytes | None) -> CachedProduct | None:
    if raw is None:
        return None
    try:
        return CachedProduct.model_validate_json(raw)
    except ValueError:  # written by an older shape of the code: treat as a miss
        return None


def _parse_hash(fields: Mapping[bytes, bytes]) -> StockLevels | None:
    if not fields:
        return None
    try:
        return {uuid.UUID(name.decode()): StockLevel.decode(value)
                for name, value in fields.items() if name != _PRESENT.encode()}
    except ValueError:
        return None


def _parse_json(raw: bytes | None) -> StockLevels | None:
    if raw is None:
        return None
    try:
        return {uuid.UUID(name): StockLevel.decode(value) for name, value in orjson.loads(raw).items()}
    except (ValueError, AttributeError):
        return None


def read(store: Store, product_id: uuid.UUID) -> tuple[CachedProduct | None, StockLevels | None]:
    """The product entry and the stock entry (each None when missing), in one round trip on Redis."""
    try:
        if isinstance(store, RedisStore):
            pipe = store.client.pipeline(transaction=False)
            pipe.get(cache_key(product_id))
            pipe.hgetall(stock_key(product_id))
            raw, fields = pipe.execute()
            return _parse_product(raw), _parse_hash(fields)
        return _parse_product(store.get(cache_key(product_id))), _parse_json(store.get(stock_key(product_id)))
    except Exception as exc:  # the cache is an optimisation: fall back to the database
        log.warning("catalog_cache_read_failed", error=f"{type(exc).__name__}: {exc}")
        return None, None


def read_many(
    store: Store, product_ids: Sequence[uuid.UUID]
) -> list[tuple[CachedProduct | None, StockLevels | None]]:
    """`read` for several products (a storefront page), in ONE round trip on Redis; in order."""
    try:
        if isinstance(store, RedisStore):
            pipe = store.client.pipeline(transaction=False)
            for product_id in product_ids:
                pipe.get(cache_key(product_id))
                pipe.hgetall(stock_key(product_id))
            replies = pipe.execute()
            return [(_parse_product(replies[2 * n]), _parse_hash(replies[2 * n + 1])) for n in range(len(product_ids))]
    except Exception as exc:  # the cache is an optimisation: fall back to the database
        log.warning("catalog_cache_read_failed", error=f"{type(exc).__name__}: {exc}")
        return [(None, None)] * len(product_ids)
    return [read(store, product_id) for product_id in product_ids]


def write(store: Store, entry: CachedProduct, ttl_seconds: int) -> None:
    try:
        store.set(cache_key(entry.product.id), entry.model_dump_json().encode(), ttl_seconds)
    except Exception as exc:
        log.warning("catalog_cache_write_failed", error=f"{type(exc).__name__}: {exc}")


def write_stock(store: Store, product_id: uuid.UUID, levels: StockLevels, ttl_seconds: int) -> None:
    """Replace the stock entry (read from the database just now)."""
    try:
        if isinstance(store, RedisStore):
            key = stock_key(product_id)
            mapping: dict[str | bytes, bytes | float | int | str] = {_PRESENT: "1"}
            mapping.update({str(vid): level.encode() for vid, level in levels.items()})
            pipe = store.client.pipeline(transaction=True)  # no reader sees it half written
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, ttl_seconds)
            pipe.execute()
            return
        payload = {str(vid): level.encode() for vid, level in levels.items()}
        store.set(stock_key(product_id), orjson.dumps(payload), ttl_seconds)
    except Exception as exc:
        log.warning("catalog_cache_write_failed", error=f"{type(exc).__name__}: {exc}")


def delete(store: Store, product_ids: Iterable[uuid.UUID], *, stock_only: bool = False) -> None:
    ids = sorted(set(product_ids))
    keys = [stock_key(pid) for pid in ids] + ([] if stock_only else [cache_key(pid) for pid in ids])
    if not keys:
        return
    try:
        store.delete(*keys)
    except Exception as exc:
        log.warning("catalog_cache_delete_failed", keys=len(keys), error=f"{type(exc).__name__}: {exc}")


# KEYS: stock entries; ARGV: for each key in turn, its number of variants, then per variant its
# id, stock and encoded level. Sets a variant's level only if the entry has that variant at a
# HIGHER stock: a reservation only ever lowers stock, so the lower of two levels is the later one.
# A missing entry or variant stays missing (the next read builds it from the database).
_LOWER_LUA = """
local a = 1
for k = 1, #KEYS do
    local n = tonumber(ARGV[a])
    a = a + 1
    for _ = 1, n do
        local current = redis.call('HGET', KEYS[k], ARGV[a])
        if current and tonumber(string.match(current, '^%S+')) > tonumber(ARGV[a + 1]) then
            redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 2])
        end
        a = a + 3
    end
end
return 0
"""


def lower(store: Store, levels: Mapping[uuid.UUID, StockLevels]) -> None:
    """Lower cached stock levels after reservations committed (see the module docstring)."""
    if not levels:
        return
    try:
        if not isinstance(store, RedisStore):
            store.delete(*sorted(stock_key(pid) for pid in levels))
            return
        keys: list[str] = []
        args: list[Any] = []
        for product_id, variants in sorted(levels.items()):
            keys.append(stock_key(product_id))
            args.append(len(variants))
            for variant_id, level in variants.items():
                args += [str(variant_id), level.stock, level.encode()]
        # One EVAL for every product of the order (a pipeline costs twice the client CPU, and a
        # registered script a SCRIPT EXISTS round trip); Redis caches the compiled script by its
        # text.
        store.client.eval(_LOWER_LUA, len(keys), *keys, *args)
    except Exception as exc:
        log.warning("catalog_cache_lower_failed", products=len(levels), error=f"{type(exc).__name__}: {exc}")


def _after_commit(session: Session) -> None:
    dirty: set[uuid.UUID] = session.info.pop(_DIRTY, set())
    stock_dirty: set[uuid.UUID] = session.info.pop(_STOCK_DIRTY, set()) - dirty
    lowered: dict[uuid.UUID, StockLevels] = session.info.pop(_LOWERED, {})
    session.info.pop(_HOOKED, None)
    # The store of the runtime that opened this unit of work (the one its reads went through),
    # so callers outside the catalog need not pass it.
    store = session_store(session)
    delete(store, dirty)
    delete(store, stock_dirty, stock_only=True)
    # A dropped entry is rebuilt from the database by the next read: nothing left to lower.
    lower(store, {pid: levels for pid, levels in lowered.items() if pid not in dirty and pid not in stock_dirty})


def _hook(session: Session) -> None:
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        event.listen(session, "after_commit", _after_commit, once=True)


def invalidate_after_commit(session: Session, product_ids: Iterable[uuid.UUID]) -> None:
    """Drop the cached entries (product and stock) of `product_ids` when `session` commits (one
    DEL for all of them)."""
    dirty: set[uuid.UUID] = session.info.setdefault(_DIRTY, set())
    dirty.update(product_ids)
    _hook(session)


def drop_stock_after_commit(session: Session, product_ids: Iterable[uuid.UUID]) -> None:
    """Drop the cached stock of `product_ids` when `session` commits (stock went up)."""
    dirty: set[uuid.UUID] = session.info.setdefault(_STOCK_DIRTY, set())
    dirty.update(product_ids)
    _hook(session)


def lower_stock_after_commit(session: Session, levels: Mapping[uuid.UUID, StockLevels]) -> None:
    """When `session` commits, lower the cached stock of the variants a reservation took to the
    levels its UPDATE returned (`{product_id: {variant_id: StockLevel}}`)."""
    lowered: dict[uuid.UUID, StockLevels] = session.info.setdefault(_LOWERED, {})
    for product_id, variants in levels.items():
        mine = lowered.setdefault(product_id, {})
        for variant_id, level in variants.items():
            known = mine.get(variant_id)
            if known is None or level.stock < known.stock:  # two reservations in one transaction
                mine[variant_id] = level
    _hook(session)
