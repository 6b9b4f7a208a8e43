"""Relationship intelligence: the people a seller's or an affiliate's team knows at a buyer
organization (buying role, influence, who they report to, notes, and which team member owns the
relationship). Each team reads its own records; a seller's and an affiliate's teams read each
other's for a buyer organization only where the charter the affiliate accepted in the seller's
program says `share_relationship_contacts` (affiliates.service.charters)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from affiliates.models import CharterAcceptance, Program, ProgramCharter
from kernel.auth import Principal, Role
from kernel.errors import NotFound
from orders.models import BuyerOrganization, RelationshipContact

BUYING_ROLES = ("decision_maker", "influencer", "user", "gatekeeper", "approver")


def record(session: Session, principal: Principal, buyer_organization_id: uuid.UUID, *, name: str,
           email: str | None, buying_role: str, influence: int, reports_to_id: uuid.UUID | None, notes: str,
           relationship_owner_id: uuid.UUID | None) -> RelationshipContact:
    if session.get(BuyerOrganization, buyer_organization_id) is None:
        raise NotFound(f"no buyer organization {buyer_organization_id}")
    if reports_to_id is not None:
        boss = session.get(RelationshipContact, reports_to_id)
        if boss is None or boss.buyer_organization_id != buyer_organization_id:
            raise NotFound(f"no contact {reports_to_id} at this buyer organization")
    assert principal.subject_id is not None
    row = RelationshipContact(
        buyer_organization_id=buyer_organization_id, owner_kind=principal.role.value, owner_id=principal.subject_id,
        name=name, email=email, buying_role=buying_role, influence=influence, reports_to_id=reports_to_id,
        notes=notes, relationship_owner_id=relationship_owner_id)
    session.add(row)
    session.flush()
    return row


def _sharing_partners(session: Session, principal: Principal) -> list[uuid.UUID]:
    """The other side of every charter the caller is party to whose latest accepted version shares
    relationship contacts: a seller's affiliates, an affiliate's sellers."""
    latest: dict[tuple[uuid.UUID, uuid.UUID], tuple[int, bool]] = {}
    stmt = (select(Program.seller_id, CharterAcceptance.affiliate_id, ProgramCharter.version, ProgramCharter.terms)
            .join(ProgramCharter, ProgramCharter.program_id == Program.id)
            .join(CharterAcceptance, CharterAcceptance.charter_id == ProgramCharter.id))
    if principal.role is Role.SELLER:
        stmt = stmt.where(Program.seller_id == principal.subject_id)
    else:
        stmt = stmt.where(CharterAcceptance.affiliate_id == principal.subject_id)
    for seller_id, affiliate_id, version, terms in session.execute(stmt):
        pair = (seller_id, affiliate_id)
        if pair not in latest or latest[pair][0] < version:
            latest[pair] = (version, bool(terms.get("share_relationship_contacts")))
    mine_is_seller = principal.role is Role.SELLER
    return [affiliate if mine_is_seller else seller for (seller, affiliate), (_, shared) in latest.items() if shared]


def visible(
    session: Session, principal: Principal, buyer_organization_id: uuid.UUID | None
) -> list[RelationshipContact]:
    """The caller's team's contacts, and those its charter partners share with it."""
    owners = [principal.subject_id, *_sharing_partners(session, principal)]
    stmt = select(RelationshipContact).where(RelationshipContact.owner_id.in_(owners)).order_by(
        RelationshipContact.created_at, RelationshipContact.id)
    if buyer_organization_id is not None:
        stmt = stmt.where(RelationshipContact.buyer_organization_id == buyer_organization_id)
    return list(session.scalars(stmt))
