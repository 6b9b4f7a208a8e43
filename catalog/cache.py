"""The product read cache: one entry per product in `runtime.store` (Redis when configured).

An entry holds the seller's full view of the product (`ProductOut`) plus the seller's name and
status, so both the seller/operator read (`GET /v1/products/{id}`) and the public catalog read
(`GET /v1/catalog/products/{id}`) are served from it without touching the database.

Invalidation has one entry point, `invalidate_after_commit(session, product_ids)`, called by every
catalog write (product, variant, price, stock, seller status) right after it flushes. The keys are
deleted once the transaction COMMITS, not at flush: deleting before the commit would let a
concurrent reader miss, read the old committed row and cache it again for a whole TTL. A rolled
back transaction deletes at its session's next commit or never, which is harmless either way.
The TTL (settings.catalog_cache_ttl_seconds) bounds what is left: a reader that read the old row
just before the commit and writes it just after the delete.

The store failing (Redis down) never fails a request: reads fall back to the database, and a
failed delete is logged (the TTL then bounds the staleness).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import structlog
from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.orm import Session

from catalog.schemas import ProductOut
from marketplace.cache import Store
from marketplace.runtime import get_runtime

log = structlog.get_logger(__name__)

KEY_PREFIX = "catalog:product:"
_DIRTY = "catalog_cache_dirty"
_HOOKED = "catalog_cache_hooked"


class CachedProduct(BaseModel):
    product: ProductOut
    seller_name: str
    seller_status: str


def cache_key(product_id: uuid.UUID) -> str:
    return f"{KEY_PREFIX}{product_id}"


def read(store: Store, product_id: uuid.UUID) -> CachedProduct | None:
    try:
        raw = store.get(cache_key(product_id))
    except Exception as exc:  # the cache is an optimisation: fall back to the database
        log.warning("catalog_cache_read_failed", error=f"{type(exc).__name__}: {exc}")
        return None
    if raw is None:
        return None
    try:
        return CachedProduct.model_validate_json(raw)
    except ValueError:  # written by an older shape of the code: treat as a miss
        return None


def write(store: Store, entry: CachedProduct, ttl_seconds: int) -> None:
    try:
        store.set(cache_key(entry.product.id), entry.model_dump_json().encode(), ttl_seconds)
    except Exception as exc:
        log.warning("catalog_cache_write_failed", error=f"{type(exc).__name__}: {exc}")


def delete(store: Store, product_ids: Iterable[uuid.UUID]) -> None:
    keys = sorted(cache_key(product_id) for product_id in product_ids)
    if not keys:
        return
    try:
        store.delete(*keys)
    except Exception as exc:
        log.warning("catalog_cache_delete_failed", keys=len(keys), error=f"{type(exc).__name__}: {exc}")


def _delete_dirty(session: Session) -> None:
    dirty: set[uuid.UUID] = session.info.pop(_DIRTY, set())
    session.info.pop(_HOOKED, None)
    # The process runtime's store: the one the API reads through (the API, worker and CLI each
    # install theirs with set_runtime), so callers outside the catalog need not pass it.
    delete(get_runtime().store, dirty)


def invalidate_after_commit(session: Session, product_ids: Iterable[uuid.UUID]) -> None:
    """Drop the cached entries of `product_ids` when `session` commits (one DEL for all of them)."""
    dirty: set[uuid.UUID] = session.info.setdefault(_DIRTY, set())
    dirty.update(product_ids)
    if not session.info.get(_HOOKED):
        session.info[_HOOKED] = True
        event.listen(session, "after_commit", _delete_dirty, once=True)
