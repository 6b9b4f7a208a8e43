"""The public catalog: published products of approved sellers, searched, filtered, sorted and
paged with keyset cursors.

Search: on PostgreSQL `to_tsvector('simple', name || ' ' || description) @@
websearch_to_tsquery('simple', q)`, written exactly like the GIN expression index
`ix_products_search` of migration 0002 so the planner uses it ('simple': no stemming, product
names are not English prose). On SQLite every word of `q` must appear in the name or the
description (case-insensitive LIKE), which is the same rule for plain queries.

Pagination: the cursor carries the sort, the sort key of the last item and its id, and the next
page is `WHERE (key, id) > (last key, last id)` in the sort's direction. That works for every sort
(ties broken by id) and never skips or repeats an item when rows are added between pages.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, literal, literal_column, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from catalog.errors import InvalidProduct
from catalog.models import Product, ProductStatus, Seller, SellerStatus, Variant
from catalog.schemas import CatalogProductOut, CatalogSort
from catalog.service.products import catalog_out, product_out
from kernel.errors import Unprocessable
from kernel.money import MoneyError, normalize_currency
from kernel.schemas import MAX_AMOUNT, holds_nul


@dataclass(frozen=True, slots=True)
class CatalogQuery:
    q: str | None = None
    seller_id: uuid.UUID | None = None
    category: str | None = None
    tag: str | None = None
    currency: str | None = None
    min_price: int | None = None  # minor units of `currency`, on any active variant
    max_price: int | None = None
    in_stock: bool | None = None
    sort: CatalogSort = "newest"
    cursor: str | None = None
    limit: int = 50


# --- cursors ------------------------------------------------------------------------------------


def encode_cursor(sort: str, key: Any, last_id: uuid.UUID) -> str:
    raw = json.dumps([sort, key, last_id.hex], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
    """(sort key, id) of the last item of the previous page; 422 for a cursor of another sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, key, last_id = json.loads(raw)
        if not isinstance(last_id, str):
            raise TypeError(last_id)
        parsed = uuid.UUID(hex=last_id)
    except (binascii.Error, ValueError, TypeError):
        raise Unprocessable("cursor is not one this API returned") from None
    if cursor_sort != sort:
        raise Unprocessable(f"this cursor belongs to sort={cursor_sort}; keep the sort while paging")
    # A key the database compares with a column: of its type and range (a crafted 10**30 overflows).
    if sort in ("price_asc", "price_desc") and not (isinstance(key, int) and 0 <= key <= MAX_AMOUNT):
        raise Unprocessable("cursor is not one this API returned")
    if sort == "name" and not (isinstance(key, str) and not holds_nul(key)):
        raise Unprocessable("cursor is not one this API returned")
    return key, parsed


# --- filters ------------------------------------------------------------------------------------


def _search_pg(q: str) -> ColumnElement[bool]:
    document = func.to_tsvector(
        literal_column("'simple'"), Product.name.op("||")(literal_column("' '")).op("||")(Product.description)
    )
    return document.op("@@")(func.websearch_to_tsquery(literal_column("'simple'"), q))


def _like_escape(word: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", word.lower())


def _search_like(q: str) -> ColumnElement[bool]:
    words = [w for w in re.split(r"\s+", q.replace('"', " ")) if w]
    clauses = []
    for word in words:
        pattern = f"%{_like_escape(word)}%"
        clauses.append(or_(
            func.lower(Product.name).like(pattern, escape="\\"),
            func.lower(Product.description).like(pattern, escape="\\"),
        ))
    return and_(*clauses) if clauses else literal(True)


def _has_tag(tag: str, dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return type_coerce(Product.tags, JSONB).contains([tag])
    each = func.json_each(Product.tags).table_valued("value").alias("tag_each")
    return select(literal(1)).select_from(each).where(each.c.value == tag).exists()


def _variant_exists(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(Variant.product_id == Product.id, Variant.active.is_(True), *conditions)


def _filters(query: CatalogQuery, dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        Product.status == ProductStatus.PUBLISHED.value,
        Seller.status == SellerStatus.APPROVED.value,
        Product.min_price_amount.is_not(None),  # something for sale (publishing already ensures it)
    ]
    if query.q:
        where.append(_search_pg(query.q) if dialect == "postgresql" else _search_like(query.q))
    if query.seller_id is not None:
        where.append(Product.seller_id == query.seller_id)
    if query.category:
        where.append(func.lower(Product.category) == query.category.strip().lower())
    if query.tag:
        where.append(_has_tag(query.tag.strip().lower(), dialect))
    if query.currency:
        try:
            where.append(Product.currency == normalize_currency(query.currency))
        except MoneyError as exc:
            raise InvalidProduct(str(exc)) from None
    if query.min_price is not None or query.max_price is not None:
        if not query.currency:
            raise InvalidProduct("min_price/max_price are minor units: give the currency they are in")
        if query.min_price is not None and query.max_price is not None and query.min_price > query.max_price:
            raise InvalidProduct("min_price is above max_price")
        bounds = []
        if query.min_price is not None:
            bounds.append(Variant.price_amount >= query.min_price)
        if query.max_price is not None:
            bounds.append(Variant.price_amount <= query.max_price)
        where.append(_variant_exists(*bounds))
    if query.in_stock is not None:
        stocked = _variant_exists(Variant.stock > 0)
        where.append(stocked if query.in_stock else ~stocked)
    return where


def matching_product_ids(session: Session, product_ids: list[uuid.UUID], *, q: str | None,
                         seller_id: uuid.UUID | None) -> set[uuid.UUID]:
    """Which of `product_ids` are for sale and match `q` (the search rule above) and `seller_id`:
    a storefront's search within its own listing, one SELECT."""
    if not product_ids:
        return set()
    query = CatalogQuery(q=q, seller_id=seller_id)
    stmt = (select(Product.id).join(Seller, Seller.id == Product.seller_id)
            .where(Product.id.in_(product_ids), *_filters(query, session.get_bind().dialect.name)))
    return set(session.scalars(stmt))


# --- the query ------------------------------------------------------------------------------------


def _sort_key_column(sort: CatalogSort) -> ColumnElement[Any] | None:
    if sort in ("price_asc", "price_desc"):
        return Product.min_price_amount.expression
    if sort == "name":
        return func.lower(Product.name)
    return None


def search(session: Session, query: CatalogQuery) -> tuple[list[CatalogProductOut], str | None]:
    """One page of the catalog and the cursor of the next page (None at the end). Two SELECTs:
    the products with their sellers' names, then their variants."""
    dialect = session.get_bind().dialect.name
    key_column = _sort_key_column(query.sort)
    sort_key = (key_column if key_column is not None else literal(None)).label("sort_key")
    stmt = (
        select(Product, Seller.name, sort_key)
        .join(Seller, Seller.id == Product.seller_id)
        .where(*_filters(query, dialect))
    )
    descending = query.sort in ("newest", "price_desc")
    if query.cursor:
        last_key, last_id = decode_cursor(query.cursor, query.sort)
        if key_column is None:
            stmt = stmt.where(Product.id < last_id if descending else Product.id > last_id)
        elif descending:
            stmt = stmt.where(or_(key_column < last_key, and_(key_column == last_key, Product.id < last_id)))
        else:
            stmt = stmt.where(or_(key_column > last_key, and_(key_column == last_key, Product.id > last_id)))
    if key_column is None:
        stmt = stmt.order_by(Product.id.desc())
    elif descending:
        stmt = stmt.order_by(key_column.desc(), Product.id.desc())
    else:
        stmt = stmt.order_by(key_column.asc(), Product.id.asc())
    rows = session.execute(stmt.limit(query.limit + 1)).all()
    page = rows[: query.limit]
    items = [catalog_out(product_out(product), seller_name) for product, seller_name, _ in page]
    next_cursor = None
    if len(rows) > query.limit:
        last_product, _, last_key = page[-1]
        next_cursor = encode_cursor(query.sort, last_key, last_product.id)
    return items, next_cursor
