"""The funnel's traffic, counted server-side without a database write per request (issue 16).

What is counted, per UTC day:
- `visits`: a storefront's product listing (its first page) opened by a human visitor, once per
  visitor per storefront per day (the visitor's keys from affiliates.service.visitors, claimed in
  the store with a day's TTL; bots and prefetches are not counted);
- `product_views`: a storefront's product page opened by a human visitor (every view);
- `carts_started`: a checkout request at a storefront (a cart that then fails on stock started
  too); a checkout outside a storefront is counted when its order is placed (no group is known
  before);
- `checkouts_begun`: an order placed (awaiting payment); replays of the same Idempotency-Key are
  not counted again.

How: the request adds to counters in the store (`gtraffic:{metric}:{kind}:{id}:{day}`: INCR in
Redis, one round trip; a dict in the process without Redis), naming what it knows cheaply (the
storefront's slug, the product, the order's storefront, affiliate and sellers). The
`affiliates.flush_traffic` beat task pops them (GETDEL) and adds them to `growth_traffic_daily`
in one upsert, resolving slugs to the storefront and its affiliate and products to their seller
(a program is its seller's: one program per seller). Without Redis a report flushes this
process's counters before it reads. Counts are statistics, never money: a crash between the pop
and the commit loses at most one flush's worth (as with clicks, affiliates.service.links), and a
request whose store is down is not counted (`_count`): counting never fails a request, least of
all a checkout whose order is already committed (`bench --chaos` found those answered 500 while
Redis restarted).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

import structlog
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from affiliates.models import Storefront, TrafficDaily
from affiliates.service.visitors import Visitor
from catalog.models import Product
from kernel.cache import Store
from kernel.clock import clock

log = structlog.get_logger(__name__)

PREFIX = "gtraffic:"
SEEN_PREFIX = "gseen:"  # apart from PREFIX: its values are not counters
METRICS = ("visits", "product_views", "carts_started", "checkouts_begun")
# What a counter names: a storefront by slug, a product, or a group by id.
KINDS = ("slug", "product", "storefront", "affiliate", "seller")
TrafficKey = tuple[str, date, uuid.UUID]  # group type, day, group id


def _key(metric: str, kind: str, ident: object, day: date) -> str:
    return f"{PREFIX}{metric}:{kind}:{ident}:{day.isoformat()}"


def _count(store: Store, amounts: dict[str, int]) -> None:
    """Add to the counters; a store that is down loses this request's counts, never the request."""
    try:
        store.incr_many(amounts)
    except Exception as exc:
        log.warning("traffic_count_failed", error=f"{type(exc).__name__}: {exc}", counters=len(amounts))


def count_visit(store: Store, slug: str, visitor: Visitor) -> None:
    """A storefront's listing opened: one visit per human visitor per storefront per day."""
    if visitor.automated:
        return
    day = clock.now().date()
    try:
        held = store.claim({f"{SEEN_PREFIX}{slug}:{day.isoformat()}:{key}": b"1" for key in visitor.keys}, 86_400)
    except Exception as exc:  # the store is down: the visit is not counted (see the module docstring)
        log.warning("traffic_count_failed", error=f"{type(exc).__name__}: {exc}", counters=1)
        return
    if any(value is not None for value in held.values()):
        return
    _count(store, {_key("visits", "slug", slug, day): 1})


def count_product_view(store: Store, slug: str, product_id: uuid.UUID, visitor: Visitor) -> None:
    if visitor.automated:
        return
    day = clock.now().date()
    _count(store, {_key("product_views", "slug", slug, day): 1,
                   _key("product_views", "product", product_id, day): 1})


def count_checkout(store: Store, *, slug: str | None, placed: bool, storefront_id: uuid.UUID | None = None,
                   affiliate_id: uuid.UUID | None = None, seller_ids: Iterable[uuid.UUID] = ()) -> None:
    """A checkout request (`slug`: at a storefront) and, when `placed`, the order it placed with
    its groups. One round trip to the store."""
    day = clock.now().date()
    amounts: dict[str, int] = {}
    if slug is not None:
        amounts[_key("carts_started", "slug", slug, day)] = 1
    if placed:
        groups = [("storefront", storefront_id), ("affiliate", affiliate_id)]
        groups += [("seller", seller_id) for seller_id in dict.fromkeys(seller_ids)]
        for kind, ident in groups:
            if ident is None:
                continue
            amounts[_key("checkouts_begun", kind, ident, day)] = 1
            if slug is None:  # outside a storefront: its cart counts when its order is placed
                amounts[_key("carts_started", kind, ident, day)] = 1
    if amounts:
        _count(store, amounts)


def _parse(counters: dict[str, int]) -> dict[tuple[str, str, str, date], int]:
    """Counter keys -> {(metric, kind, ident, day): n}; malformed keys are skipped."""
    out: dict[tuple[str, str, str, date], int] = defaultdict(int)
    for key, value in counters.items():
        try:
            metric, kind, ident, day = key[len(PREFIX):].split(":")
            parsed = (metric, kind, ident, date.fromisoformat(day))
        except ValueError:
            continue
        if metric in METRICS and kind in KINDS:
            out[parsed] += int(value)
    return dict(out)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _resolve(session: Session, parsed: dict[tuple[str, str, str, date], int]) -> dict[TrafficKey, dict[str, int]]:
    """Slugs -> (storefront, its affiliate); products -> their seller; two SELECTs at most."""
    slugs = {ident for (_, kind, ident, _) in parsed if kind == "slug"}
    products = {_uuid(ident) for (_, kind, ident, _) in parsed if kind == "product"} - {None}
    fronts = {slug: (sid, aid) for slug, sid, aid in session.execute(
        select(Storefront.slug, Storefront.id, Storefront.affiliate_id).where(Storefront.slug.in_(slugs)))} \
        if slugs else {}
    sellers = {pid: sid for pid, sid in session.execute(
        select(Product.id, Product.seller_id).where(Product.id.in_(products)))} if products else {}
    rows: dict[TrafficKey, dict[str, int]] = defaultdict(lambda: dict.fromkeys(METRICS, 0))
    for (metric, kind, ident, day), n in parsed.items():
        targets: list[tuple[str, uuid.UUID]] = []
        if kind == "slug" and ident in fronts:
            targets = [("storefront", fronts[ident][0]), ("affiliate", fronts[ident][1])]
        elif kind == "product":
            product_id = _uuid(ident)
            seller = sellers.get(product_id) if product_id is not None else None
            targets = [("seller", seller)] if seller is not None else []
        elif (group_id := _uuid(ident)) is not None:
            targets = [(kind, group_id)]
        for group_type, group_id in targets:
            rows[(group_type, day, group_id)][metric] += n
    return dict(rows)


def add_traffic(session: Session, counters: dict[str, int]) -> int:
    """Add popped counters to `growth_traffic_daily`: one multi-row upsert in key order. Returns
    the rows touched."""
    rows = _resolve(session, _parse(counters))
    if not rows:
        return 0
    values = [{"group_type": t, "day": d, "group_id": g, **metrics}
              for (t, d, g), metrics in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2])))]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(TrafficDaily).values(values)
    stmt = stmt.on_conflict_do_update(index_elements=["group_type", "day", "group_id"], set_={
        metric: getattr(TrafficDaily, metric) + getattr(stmt.excluded, metric) for metric in METRICS})
    session.execute(stmt)
    return len(values)


def pop_counters(store: Store) -> dict[str, int]:
    return store.pop_counters(PREFIX)


def restore_counters(store: Store, counters: dict[str, int]) -> None:
    store.incr_many(counters)


def flush(session: Session, store: Store) -> int:
    """Pop the counters and add them in `session`'s transaction (the caller commits); a failure
    puts them back."""
    counters = pop_counters(store)
    if not counters:
        return 0
    try:
        added = add_traffic(session, counters)
        session.flush()
    except Exception:
        restore_counters(store, counters)
        raise
    return added

