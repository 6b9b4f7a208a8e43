"""Buyer data seen through the one policy (orders.service.buyer_policy): the orders an affiliate
brought, with what it may see of each buyer, the log of reads of buyer contact data, and the
buyer's privacy requests (orders.service.privacy)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, EmailStr, Field, StrictInt

from kernel.auth import Principal, Role
from kernel.deps import AffiliatePrincipal, CurrentPrincipal, DbSession, OperatorPrincipal, StrictQuery
from kernel.errors import Forbidden
from kernel.schemas import MoneyOut, StrictModel, money
from orders.schemas import BuyerFieldsOut
from orders.service import buyer_policy, contacts, privacy
from orders.service.buyer_policy import Viewer

router = APIRouter(prefix="/v1", dependencies=[StrictQuery])
LimitQuery = Annotated[int, Query(ge=1, le=200)]


def _seller_or_affiliate(principal: CurrentPrincipal) -> Principal:
    if principal.role not in (Role.SELLER, Role.AFFILIATE):
        raise Forbidden("relationship contacts are sellers' and affiliates' records")
    return principal


SellerOrAffiliate = Annotated[Principal, Depends(_seller_or_affiliate)]


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
    log = buyer_policy.AccessLog()  # the list's reads of buyer data: one insert
    for order in buyer_policy.orders_brought_by(session, viewer.organization_id, limit):
        buyer = buyer_policy.view_and_log(session, order, viewer, log=log)
        out.append(AffiliateOrderOut(
            id=order.id, status=order.status, total=money(order.total_amount, order.currency),
            attribution_source=order.attribution_source, created_at=order.created_at,
            buyer=BuyerFieldsOut.model_validate(buyer.as_json())))
    log.write(session)
    return out


@router.get("/buyer-data-access", response_model=list[BuyerDataAccessOut], tags=["buyer data"])
def buyer_data_access(
    session: DbSession, principal: CurrentPrincipal, order_id: uuid.UUID | None = None, limit: LimitQuery = 100,
) -> list[BuyerDataAccessOut]:
    """Who read buyer contact data, newest first: an operator sees every read, a seller's admins
    their team's reads, a buyer organization's admin the reads of its orders."""
    rows = buyer_policy.access_log(session, Viewer.of(principal), order_id=order_id, limit=limit)
    return [BuyerDataAccessOut.model_validate(row, from_attributes=True) for row in rows]


class ErasureIn(StrictModel):
    email: EmailStr


class ErasureOut(BaseModel):
    orders: int = Field(description="orders pseudonymized")
    mails: int = Field(description="mails whose address and body were removed")
    pseudonym: str
    buyer_accounts: int = Field(description="buyer accounts on the email closed (their orders list gone)")


@router.get("/privacy/exports", response_model=dict[str, Any], tags=["buyer data"])
def privacy_export(session: DbSession, principal: OperatorPrincipal, email: EmailStr) -> dict[str, Any]:
    """Operator, for a buyer's request: everything held about this email (orders as their links show
    them, consent changes, who read the buyer's contact data)."""
    return privacy.export(session, str(email))


@router.post("/privacy/erasures", response_model=ErasureOut, tags=["buyer data"])
def privacy_erasure(body: ErasureIn, session: DbSession, principal: OperatorPrincipal) -> ErasureOut:
    """Operator, for a buyer's request: erase the buyer's personal data. Orders, sub-orders,
    commissions, refunds and the journal stay as they are (pseudonymized, balanced)."""
    done = privacy.erase(session, str(body.email))
    return ErasureOut(orders=done.orders, mails=done.mails, pseudonym=done.pseudonym,
                      buyer_accounts=done.buyer_accounts)


class ContactIn(StrictModel):
    buyer_organization_id: uuid.UUID
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr | None = None
    buying_role: Literal["decision_maker", "influencer", "user", "gatekeeper", "approver"]
    influence: StrictInt = Field(ge=1, le=5, description="1 (little) .. 5 (decisive)")
    reports_to_id: uuid.UUID | None = Field(default=None, description="another contact at the same organization")
    notes: str = Field(default="", max_length=5000)
    relationship_owner_id: uuid.UUID | None = Field(default=None, description="the person on your team who owns it")


class ContactOut(BaseModel):
    id: uuid.UUID
    buyer_organization_id: uuid.UUID
    owner_kind: str
    owner_id: uuid.UUID
    name: str
    email: str | None
    buying_role: str
    influence: int
    reports_to_id: uuid.UUID | None
    notes: str
    relationship_owner_id: uuid.UUID | None
    created_at: datetime


@router.post("/relationship-contacts", status_code=201, response_model=ContactOut, tags=["buyer data"],
             responses={404: {"description": "no such buyer organization, or `reports_to_id` is not a contact there"}})
def record_contact(body: ContactIn, session: DbSession, principal: SellerOrAffiliate) -> ContactOut:
    """Seller or affiliate: record a person your team knows at a buyer organization."""
    row = contacts.record(session, principal, body.buyer_organization_id, name=body.name,
                          email=str(body.email) if body.email else None, buying_role=body.buying_role,
                          influence=body.influence, reports_to_id=body.reports_to_id, notes=body.notes,
                          relationship_owner_id=body.relationship_owner_id)
    return ContactOut.model_validate(row, from_attributes=True)


@router.get("/relationship-contacts", response_model=list[ContactOut], tags=["buyer data"])
def list_contacts(
    session: DbSession, principal: SellerOrAffiliate, buyer_organization_id: uuid.UUID | None = None,
) -> list[ContactOut]:
    """Your team's contacts, and those a charter shares with you (`share_relationship_contacts`)."""
    return [ContactOut.model_validate(row, from_attributes=True)
            for row in contacts.visible(session, principal, buyer_organization_id)]
