"""The public storefront cache: one entry per storefront slug in `runtime.store` (Redis when
configured), holding the storefront's public fields and the ids of the products it lists.

What invalidates it: every write that changes what the entry holds (storefront update, listing
added or removed, membership removed, affiliate approved or rejected) calls
`invalidate_storefronts_after_commit`, which deletes the entries once the transaction COMMITS
(deleting before would let a concurrent reader re-cache the old rows). TTL: STOREFRONT_TTL_SECONDS
bounds anything missed (e.g. an affiliate renamed).

Products are not copied into this entry: each listed product is read through the catalog's own
product cache (`catalog.service.catalog_product`), which the catalog invalidates on every product,
variant, price, stock or seller change, so a catalog change shows on the storefront as soon as
the catalog's write commits (at worst after `settings.catalog_cache_ttl_seconds`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import structlog
from pydantic import BaseModel
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from kernel.cache import Store, session_store

log = structlog.get_logger(__name__)

KEY_PREFIX = "aff:storefront:"
STOREFRONT_TTL_SECONDS = 300
_DIRTY = "affiliates_storefront_cache_dirty"


class CachedStorefront(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    description: str
    currency: str
    affiliate_id: uuid.UUID
    affiliate_name: str
    affiliate_status: str
    listings: list[tuple[uuid.UUID, uuid.UUID]]  # (listing id, product id), oldest listing first
    logo_url: str | None = None
    brand_color: str | None = None
    sellers: list[tuple[uuid.UUID, str]] = []  # (seller id, name) of the listed products, by name


def cache_key(slug: str) -> str:
    return f"{KEY_PREFIX}{slug}"


def read(store: Store, slug: str) -> CachedStorefront | None:
    try:
        raw = store.get(cache_key(slug))
    except Exception as exc:  # the cache is an optimisation: fall back to the database
        log.warning("storefront_cache_read_failed", error=f"{type(exc).__name__}: {exc}")
        return None
    if raw is None:
        return None
    try:
        return CachedStorefront.model_validate_json(raw)
    except ValueError:
        return None


def write(store: Store, entry: CachedStorefront) -> None:
    try:
        store.set(cache_key(entry.slug), entry.model_dump_json().encode(), STOREFRONT_TTL_SECONDS)
    except Exception as exc:
        log.warning("storefront_cache_write_failed", error=f"{type(exc).__name__}: {exc}")


def _delete_dirty(session: Session) -> None:
    slugs: set[str] = session.info.pop(_DIRTY, set())
    if not slugs:
        return
    try:
        session_store(session).delete(*sorted(cache_key(s) for s in slugs))
    except Exception as exc:
        log.warning("storefront_cache_delete_failed", error=f"{type(exc).__name__}: {exc}")


def invalidate_storefronts_after_commit(session: Session, storefront_ids: Iterable[uuid.UUID]) -> None:
    """Drop the cached entries of these storefronts when `session` commits (slugs never change,
    so one SELECT now finds the keys)."""
    from affiliates.models import Storefront

    ids = list(storefront_ids)
    if not ids:
        return
    slugs = set(session.scalars(select(Storefront.slug).where(Storefront.id.in_(ids))))
    dirty: set[str] | None = session.info.get(_DIRTY)
    if dirty is None:
        dirty = session.info[_DIRTY] = set()
        event.listen(session, "after_commit", _delete_dirty, once=True)
    dirty.update(slugs)
