"""Small builders for the rows this domain's tests need from other domains (sellers, products,
variants). They insert with Core and name only the columns they set, so they keep working while
the catalog grows columns with defaults."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.orm import Session

from catalog.models import Product, Seller, Variant
from kernel.clock import clock
from kernel.db import new_id


@dataclass(frozen=True)
class CatalogItem:
    seller_id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID


def make_seller(session: Session, name: str = "seller", *, status: str = "approved") -> uuid.UUID:
    seller_id = new_id()
    now = clock.now()
    session.execute(insert(Seller).values(
        id=seller_id, name=name, email=f"{name}-{seller_id.hex[-8:]}@example.com", description="",
        status=status, payout_status="not_started", created_at=now, updated_at=now,
    ))
    return seller_id


def make_product(
    session: Session, seller_id: uuid.UUID, *, price: int = 1000, currency: str = "USD", name: str = "Widget",
    status: str = "published", variants: int = 1,
) -> CatalogItem:
    product_id = new_id()
    now = clock.now()
    session.execute(insert(Product).values(
        id=product_id, seller_id=seller_id, name=name, description="", tags=[], currency=currency, status=status,
        version=1, created_at=now, updated_at=now,
    ))
    variant_ids = []
    for position in range(variants):
        variant_id = new_id()
        variant_ids.append(variant_id)
        session.execute(insert(Variant).values(
            id=variant_id, product_id=product_id, seller_id=seller_id, sku=f"SKU-{variant_id.hex[-10:]}",
            name=f"Level {position + 1}", position=position, price_amount=price, currency=currency, stock=100,
            active=True, created_at=now, updated_at=now,
        ))
    return CatalogItem(seller_id, product_id, variant_ids[0])
