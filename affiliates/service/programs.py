"""Seller programs, memberships and the versioned commission plans.

A seller has at most one program. Affiliates apply to join; with `requires_approval` the seller
approves or rejects, otherwise joining is immediate. A seller may remove an approved member:
its storefront listings of that seller's products are removed with it (it may no longer sell
them), and from then on it earns nothing on that seller's lines.

Plan versions are rows that are never updated: `create_plan_version` adds one effective from a
time that is not in the past, so a settlement computed for any earlier time never changes.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from affiliates.errors import (
    InvalidInput,
    InvalidPlan,
    InvalidTransition,
    MembershipExists,
    MembershipNotFound,
    PlanVersionConflict,
    ProgramExists,
    ProgramNotFound,
)
from affiliates.models import (
    Affiliate,
    MembershipStatus,
    PlanVersion,
    Program,
    ProgramMembership,
    Storefront,
    StorefrontListing,
)
from affiliates.schemas import PlanVersionIn, ProgramIn
from affiliates.service.commission import load_program_terms
from affiliates.service.common import approved_affiliate, page
from affiliates.service.storefront_cache import invalidate_storefronts_after_commit
from catalog.errors import SellerNotApproved, SellerNotFound
from catalog.models import Seller, SellerStatus
from kernel.auth import Principal
from kernel.clock import clock

# A version "from now" sent by a client arrives a moment after the client's now: that much
# lateness is not rewriting history.
PAST_TOLERANCE = timedelta(minutes=5)


# --- programs ------------------------------------------------------------------------------------


def create_program(session: Session, seller_id: uuid.UUID, data: ProgramIn) -> Program:
    seller = session.get(Seller, seller_id)
    if seller is None:
        raise SellerNotFound(f"no seller {seller_id}")
    if seller.status != SellerStatus.APPROVED:
        raise SellerNotApproved("a seller runs an affiliate program once an operator has approved it")
    if session.scalar(select(Program.id).where(Program.seller_id == seller_id)) is not None:
        raise ProgramExists("you already run a program; PATCH /v1/programs/{id} changes it")
    values = {k: v for k, v in data.model_dump(exclude_none=True).items()}
    program = Program(seller_id=seller_id, **values)
    session.add(program)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create won
        raise ProgramExists("you already run a program") from None
    return program


def get_program(session: Session, program_id: uuid.UUID, *, lock: bool = False) -> Program:
    program = session.get(Program, program_id, with_for_update=lock)
    if program is None:
        raise ProgramNotFound(f"no program {program_id}")
    return program


def owned_program(session: Session, principal: Principal, program_id: uuid.UUID, *, lock: bool = False) -> Program:
    """The program if the caller is its seller or an operator; another seller's is a 404."""
    program = get_program(session, program_id, lock=lock)
    if not (principal.is_operator or program.seller_id == principal.subject_id):
        raise ProgramNotFound(f"no program {program_id}")
    return program


def update_program(session: Session, principal: Principal, program_id: uuid.UUID, data: ProgramIn) -> Program:
    """Change the fields sent. New windows, holding periods and discounts apply to orders placed
    from now on (orders keep what they were placed with)."""
    program = owned_program(session, principal, program_id, lock=True)
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            raise InvalidInput(f"{field} cannot be null")
        setattr(program, field, value)
    session.flush()
    return program


def list_programs(session: Session, *, seller_id: uuid.UUID | None, cursor: str | None,
                  limit: int) -> tuple[list[Program], str | None]:
    """Programs of approved sellers (what affiliates browse to find programs to join)."""
    stmt = select(Program).join(Seller, Seller.id == Program.seller_id).where(
        Seller.status == SellerStatus.APPROVED.value)
    if seller_id is not None:
        stmt = stmt.where(Program.seller_id == seller_id)
    return page(session, stmt, Program.id, cursor, limit)


def current_versions(session: Session, programs: list[Program]) -> dict[uuid.UUID, uuid.UUID | None]:
    """program id -> the plan version in force now (one SELECT)."""
    if not programs:
        return {}
    terms = load_program_terms(session, [p.seller_id for p in programs], None, clock.now())
    return {t.program_id: t.plan_version_id for t in terms.values()}


def seller_names(session: Session, programs: list[Program]) -> dict[uuid.UUID, str]:
    """seller id -> name, for the programs listed (one SELECT): whose program an affiliate joins."""
    ids = {p.seller_id for p in programs}
    if not ids:
        return {}
    return {row.id: row.name for row in session.execute(select(Seller.id, Seller.name).where(Seller.id.in_(ids)))}


# --- memberships ---------------------------------------------------------------------------------


def join(session: Session, affiliate_id: uuid.UUID, program_id: uuid.UUID, message: str) -> ProgramMembership:
    """Apply to a program: pending when it requires approval, approved at once otherwise.
    A rejected or removed affiliate may apply again (the same row goes back to pending)."""
    approved_affiliate(session, affiliate_id)
    program = get_program(session, program_id)
    status = MembershipStatus.PENDING if program.requires_approval else MembershipStatus.APPROVED
    membership = session.scalars(
        select(ProgramMembership).where(ProgramMembership.program_id == program_id,
                                        ProgramMembership.affiliate_id == affiliate_id).with_for_update()
    ).first()
    now = clock.now()
    if membership is not None:
        if membership.status in (MembershipStatus.PENDING, MembershipStatus.APPROVED):
            raise MembershipExists(f"you already applied to this program (status {membership.status})",
                                   membership_id=str(membership.id))
        membership.status, membership.reason, membership.message = status.value, None, message
        membership.decided_at = now if status is MembershipStatus.APPROVED else None
        session.flush()
        return membership
    membership = ProgramMembership(
        program_id=program_id, affiliate_id=affiliate_id, status=status.value, message=message,
        decided_at=now if status is MembershipStatus.APPROVED else None,
    )
    session.add(membership)
    try:
        session.flush()
    except IntegrityError:
        raise MembershipExists("you already applied to this program") from None
    return membership


def _membership(session: Session, principal: Principal, program_id: uuid.UUID,
                membership_id: uuid.UUID) -> ProgramMembership:
    owned_program(session, principal, program_id)
    membership = session.get(ProgramMembership, membership_id, with_for_update=True)
    if membership is None or membership.program_id != program_id:
        raise MembershipNotFound(f"no membership {membership_id} in program {program_id}")
    return membership


_DECISIONS: dict[str, tuple[set[MembershipStatus], MembershipStatus]] = {
    "approve": ({MembershipStatus.PENDING, MembershipStatus.REJECTED}, MembershipStatus.APPROVED),
    "reject": ({MembershipStatus.PENDING}, MembershipStatus.REJECTED),
    "remove": ({MembershipStatus.APPROVED}, MembershipStatus.REMOVED),
}


def decide(session: Session, principal: Principal, program_id: uuid.UUID, membership_id: uuid.UUID,
           decision: str, reason: str | None) -> ProgramMembership:
    """The seller (or an operator) approves, rejects or removes a membership. Deciding what is
    already decided the same way changes nothing; other transitions are a 409."""
    allowed_from, to = _DECISIONS[decision]
    membership = _membership(session, principal, program_id, membership_id)
    if membership.status == to:
        return membership
    if membership.status not in allowed_from:
        raise InvalidTransition(f"a {membership.status} membership cannot be {to}")
    membership.status, membership.reason, membership.decided_at = to.value, reason, clock.now()
    if to is MembershipStatus.REMOVED:
        _drop_listings(session, membership)
    session.flush()
    return membership


def _drop_listings(session: Session, membership: ProgramMembership) -> None:
    """A removed member may no longer sell the seller's products: its listings of them go."""
    program = session.get(Program, membership.program_id)
    assert program is not None
    storefront_ids = list(session.scalars(
        select(Storefront.id).where(Storefront.affiliate_id == membership.affiliate_id)))
    if not storefront_ids:
        return
    session.execute(delete(StorefrontListing).where(
        StorefrontListing.storefront_id.in_(storefront_ids), StorefrontListing.seller_id == program.seller_id,
    ).execution_options(synchronize_session=False))
    invalidate_storefronts_after_commit(session, storefront_ids)


def list_memberships(session: Session, principal: Principal, program_id: uuid.UUID, *,
                     status: MembershipStatus | None, cursor: str | None,
                     limit: int) -> tuple[list[tuple[ProgramMembership, str]], str | None]:
    owned_program(session, principal, program_id)
    stmt = select(ProgramMembership).where(ProgramMembership.program_id == program_id)
    if status is not None:
        stmt = stmt.where(ProgramMembership.status == status.value)
    rows, next_cursor = page(session, stmt, ProgramMembership.id, cursor, limit)
    names = {row[0]: row[1] for row in session.execute(select(Affiliate.id, Affiliate.name).where(
        Affiliate.id.in_([m.affiliate_id for m in rows])))} if rows else {}
    return [(m, names.get(m.affiliate_id, "")) for m in rows], next_cursor


def my_memberships(session: Session, affiliate_id: uuid.UUID, *, cursor: str | None,
                   limit: int) -> tuple[list[ProgramMembership], str | None]:
    stmt = select(ProgramMembership).where(ProgramMembership.affiliate_id == affiliate_id)
    return page(session, stmt, ProgramMembership.id, cursor, limit)


def is_approved_member(session: Session, affiliate_id: uuid.UUID, seller_id: uuid.UUID) -> bool:
    return session.scalar(
        select(ProgramMembership.id).join(Program, Program.id == ProgramMembership.program_id).where(
            Program.seller_id == seller_id, ProgramMembership.affiliate_id == affiliate_id,
            ProgramMembership.status == MembershipStatus.APPROVED.value,
        )
    ) is not None


# --- plan versions --------------------------------------------------------------------------------


def create_plan_version(session: Session, principal: Principal, program_id: uuid.UUID,
                        data: PlanVersionIn) -> PlanVersion:
    """A new immutable version effective from `effective_from` (default now). The program row
    is locked so two concurrent versions get distinct numbers."""
    program = owned_program(session, principal, program_id, lock=True)
    now = clock.now()
    effective_from = data.effective_from or now
    if effective_from < now - PAST_TOLERANCE:
        raise InvalidPlan("effective_from is in the past: a plan change applies from now on, never to "
                          "orders already placed")
    effective_from = max(effective_from, now)  # "from now" sent a moment ago means now
    number = (session.scalar(select(func.max(PlanVersion.version)).where(PlanVersion.program_id == program.id))
              or 0) + 1
    version = PlanVersion(program_id=program.id, version=number, effective_from=effective_from,
                          rules=data.rules.as_json(), note=data.note)
    session.add(version)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise PlanVersionConflict(f"a version of this program already starts at {effective_from.isoformat()}") from None
    return version


def list_plan_versions(session: Session, principal: Principal, program_id: uuid.UUID, *, cursor: str | None,
                       limit: int) -> tuple[list[PlanVersion], str | None]:
    """Every version, oldest first. The seller, an operator, and approved members may read them
    (members see the plan they are paid by)."""
    program = get_program(session, program_id)
    visible = principal.is_operator or program.seller_id == principal.subject_id or (
        principal.subject_id is not None and principal.role.value == "affiliate"
        and is_approved_member(session, principal.subject_id, program.seller_id))
    if not visible:
        raise ProgramNotFound(f"no program {program_id}")
    stmt = select(PlanVersion).where(PlanVersion.program_id == program_id)
    return page(session, stmt, PlanVersion.id, cursor, limit)


def version_in_force(session: Session, program_id: uuid.UUID, at: datetime) -> PlanVersion | None:
    return session.scalars(
        select(PlanVersion).where(PlanVersion.program_id == program_id, PlanVersion.effective_from <= at)
        .order_by(PlanVersion.effective_from.desc()).limit(1)
    ).first()
