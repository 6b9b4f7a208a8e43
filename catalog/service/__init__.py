"""The catalog's public service API: what the HTTP layer and other domains call.

The rules live in smaller modules (sellers, products, browse, stock, cache); this module names
the functions other domains may rely on, so their imports do not follow internal moves.

For checkout (orders):
* `load_variants_for_checkout(session, variant_ids) -> dict[UUID, VariantForCheckout]`, and the
  same read as a Core SELECT for a statement of the caller's (`checkout_variants`,
  `variants_from_rows`)
* `reserve_stock(session, variant_id, quantity) -> bool`
* `release_stock(session, variant_id, quantity) -> None`; `current_stock(session, variant_id) -> int`
* `take_stock(session, lines, now) -> StockTaken`: a cart's lines one conditional UPDATE each;
  `cart_stock() -> CartStock`: the same reservation as SQLAlchemy Core CTEs for one PostgreSQL
  statement; `lower_stock_after_commit(session, levels)` for the cached stock levels they return

For shipping at checkout (orders): `seller_parts(variants, quantities)` and
`chosen_shipping(session, parts, choices, required, country, region) -> {seller: ShippingOption}`
(catalog.service.shipping holds every shipping rule).

For storefronts (affiliates): `catalog_product(session, store, ttl_seconds, product_id)` (cached)
and `search_catalog(session, CatalogQuery(...))`; `matching_product_ids` (a search within a
storefront's listed products).
"""

from __future__ import annotations

from catalog.service.browse import CatalogQuery, matching_product_ids
from catalog.service.browse import search as search_catalog
from catalog.service.cache import StockLevel, invalidate_after_commit, lower_stock_after_commit
from catalog.service.products import catalog_view as catalog_product
from catalog.service.products import catalog_views as catalog_products
from catalog.service.shipping import SellerPart, ShippingOption, chosen_shipping, seller_parts
from catalog.service.stock import (
    CartStock,
    StockTaken,
    VariantForCheckout,
    cart_stock,
    checkout_variants,
    current_stock,
    load_variants_for_checkout,
    release_stock,
    reserve_stock,
    take_stock,
    variants_from_rows,
)

__all__ = [
    "CartStock",
    "CatalogQuery",
    "SellerPart",
    "ShippingOption",
    "StockLevel",
    "StockTaken",
    "VariantForCheckout",
    "cart_stock",
    "catalog_product",
    "catalog_products",
    "checkout_variants",
    "chosen_shipping",
    "current_stock",
    "invalidate_after_commit",
    "load_variants_for_checkout",
    "lower_stock_after_commit",
    "matching_product_ids",
    "release_stock",
    "reserve_stock",
    "search_catalog",
    "seller_parts",
    "take_stock",
    "variants_from_rows",
]
