"""What an API key may act for, answered by the domains that own sellers and affiliates.

The kernel's `auth.check_key_subject` takes this as a parameter: it sits below catalog and
affiliates and may not import their tables.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from affiliates.models import Affiliate, AffiliateStatus
from catalog.models import Seller, SellerStatus
from kernel.auth import Role
from orders.models import BuyerOrganization


def subject_exists(session: Session, role: Role, subject_id: uuid.UUID) -> bool:
    """Whether the seller (seller role), affiliate (affiliate role) or buyer organization (buyer)
    `subject_id` exists."""
    if role is Role.BUYER:
        return session.get(BuyerOrganization, subject_id) is not None
    model: type[Seller] | type[Affiliate] = Seller if role is Role.SELLER else Affiliate
    return session.get(model, subject_id) is not None


def subject_rejected(session: Session, role: Role, subject_id: uuid.UUID) -> bool:
    """Whether the seller (seller role) or affiliate (affiliate role) was rejected (one SELECT)."""
    if role is Role.SELLER:
        return session.scalar(select(Seller.status).where(Seller.id == subject_id)) == SellerStatus.REJECTED.value
    status = session.scalar(select(Affiliate.status).where(Affiliate.id == subject_id))
    return status == AffiliateStatus.REJECTED.value


def organization_kind(session: Session, organization_id: uuid.UUID) -> Role | None:
    """Whether `organization_id` is a seller or an affiliate (kernel.people asks, for operators
    managing another organization's members)."""
    if session.get(Seller, organization_id) is not None:
        return Role.SELLER
    if session.get(Affiliate, organization_id) is not None:
        return Role.AFFILIATE
    if session.get(BuyerOrganization, organization_id) is not None:
        return Role.BUYER
    return None


def organization_name(session: Session, kind: Role, organization_id: uuid.UUID) -> str:
    """A name for emails: the seller's or affiliate's, or the operator team."""
    if kind is Role.OPERATOR:
        return "the operator team"
    if kind is Role.BUYER:
        buyer = session.get(BuyerOrganization, organization_id)
        return buyer.name if buyer is not None else f"buyer organization {organization_id}"
    row: Seller | Affiliate | None = (
        session.get(Seller, organization_id) if kind is Role.SELLER else session.get(Affiliate, organization_id))
    return row.name if row is not None else f"{kind.value} {organization_id}"
