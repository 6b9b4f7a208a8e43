"""Buyer data seen through the one policy (orders.service.buyer_policy): the orders an affiliate
brought, with what it may see of each buyer, and the log of reads of buyer contact data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from kernel.deps import AffiliatePrincipal, CurrentPrincipal, DbSession, StrictQuery
from kernel.schemas import MoneyOut, money
from orders.schemas import BuyerFieldsOut
from orders.service import buyer_policy
from orders.service.buyer_policy import Viewer

router = APIRouter(prefix="/v1", dependencies=[StrictQuery])
LimitQuery = Annotated[int, Query(ge=1, le=200)]


class AffiliateOrderOut(BaseModel):
    id: uuid.UUID
    status: str
    total: MoneyOut
    attribution_source: str
    created_at: datetime
    buyer: BuyerFieldsOut


class BuyerDataAccessOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    viewer_kind: str
    viewer_organization_id: uuid.UUID
    viewer_role: str
    person_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    channel: str
    fields: list[str]
    purpose: str
    at: datetime


@router.get("/affiliates/me/orders", response_model=list[AffiliateOrderOut], tags=["buyer data"])
def affiliate_orders(
    session: DbSession, principal: AffiliatePrincipal, limit: LimitQuery = 50
) -> list[AffiliateOrderOut]:
    """Affiliate: the orders you brought, newest first, with what the sellers' charters and the
    buyers' consents let you see of each buyer (masked by default)."""
    viewer = Viewer.of(principal)
    out = []
    for order in buyer_policy.orders_brought_by(session, viewer.organization_id, limit):
        buyer = buyer_policy.view_and_log(session, order, viewer)
        out.append(AffiliateOrderOut(
            id=order.id, status=order.status, total=money(order.total_amount, order.currency),
            attribution_source=order.attribution_source, created_at=order.created_at,
            buyer=BuyerFieldsOut.model_validate(buyer.as_json())))
    return out


@router.get("/buyer-data-access", response_model=list[BuyerDataAccessOut], tags=["buyer data"])
def buyer_data_access(
    session: DbSession, principal: CurrentPrincipal, order_id: uuid.UUID | None = None, limit: LimitQuery = 100,
) -> list[BuyerDataAccessOut]:
    """Who read buyer contact data, newest first: an operator sees every read, a seller's admins
    their team's reads, a buyer organization's admin the reads of its orders."""
    rows = buyer_policy.access_log(session, Viewer.of(principal), order_id=order_id, limit=limit)
    return [BuyerDataAccessOut.model_validate(row, from_attributes=True) for row in rows]
