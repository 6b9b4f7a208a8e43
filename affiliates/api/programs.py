"""Seller programs: the program, affiliates' memberships and the seller's decisions on them,
and the versioned commission plan."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body

from affiliates.api.common import Cursor, Limit, SellerOrOperator
from affiliates.api.views import membership_out, program_out, version_out
from affiliates.models import MembershipStatus
from affiliates.schemas import (
    CharterAcceptanceOut,
    CharterAcceptIn,
    CharterIn,
    CharterOut,
    MembershipApply,
    MembershipDecision,
    MembershipOut,
    PlanVersionIn,
    PlanVersionOut,
    ProgramIn,
    ProgramOut,
    QuotaIn,
    QuotaOut,
)
from affiliates.service import charters, programs, quotas
from affiliates.service.common import subject
from kernel.deps import AffiliatePrincipal, CurrentPrincipal, DbSession, SellerPrincipal, StrictQuery
from kernel.schemas import Page

router = APIRouter(dependencies=[StrictQuery])


@router.post("/v1/programs", status_code=201, response_model=ProgramOut, tags=["programs"])
def create_program(body: ProgramIn, session: DbSession, principal: SellerPrincipal) -> ProgramOut:
    """Seller: start your affiliate program (one per seller). Then add a commission plan with
    `POST /v1/programs/{id}/plan-versions`: until one is in force, members earn nothing."""
    return program_out(programs.create_program(session, subject(principal), body))


@router.get("/v1/programs", response_model=Page[ProgramOut], tags=["programs"])
def list_programs(session: DbSession, principal: CurrentPrincipal, seller_id: uuid.UUID | None = None,
                  cursor: Cursor = None, limit: Limit = 50) -> Page[ProgramOut]:
    """Programs of approved sellers, oldest first (what affiliates browse to find programs to join)."""
    rows, next_cursor = programs.list_programs(session, seller_id=seller_id, cursor=cursor, limit=limit)
    current, names = programs.current_versions(session, rows), programs.seller_names(session, rows)
    return Page(items=[program_out(p, current.get(p.id), names.get(p.seller_id)) for p in rows],
                next_cursor=next_cursor)


@router.get("/v1/programs/{program_id}", response_model=ProgramOut, tags=["programs"])
def read_program(program_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> ProgramOut:
    """A program's terms (any key)."""
    program = programs.get_program(session, program_id)
    return program_out(program, programs.current_versions(session, [program]).get(program.id),
                       programs.seller_names(session, [program]).get(program.seller_id))


@router.patch("/v1/programs/{program_id}", response_model=ProgramOut, tags=["programs"])
def update_program(program_id: uuid.UUID, body: ProgramIn, session: DbSession,
                   principal: SellerOrOperator) -> ProgramOut:
    """Seller: change terms, approval, attribution window, holding period or coupon discount
    (orders already placed keep theirs)."""
    program = programs.update_program(session, principal, program_id, body)
    return program_out(program, programs.current_versions(session, [program]).get(program.id))


@router.post("/v1/programs/{program_id}/quotas", status_code=201, response_model=QuotaOut, tags=["programs"])
def set_quota(program_id: uuid.UUID, body: QuotaIn, session: DbSession, principal: SellerOrOperator) -> QuotaOut:
    """Seller: a monthly target (orders, revenue or new customers) for an affiliate in your
    program, or for the program as a whole; again for the same month and metric replaces it. A
    plan version with `quota_bonus` pays it on the affiliate's sales past its quota; attainment:
    `GET /v1/quotas`."""
    return QuotaOut.model_validate(quotas.set_quota(session, principal, program_id, body), from_attributes=True)


@router.post("/v1/programs/{program_id}/memberships", status_code=201, response_model=MembershipOut,
             tags=["programs"])
def join_program(program_id: uuid.UUID, session: DbSession, principal: AffiliatePrincipal,
                 body: Annotated[MembershipApply | None, Body()] = None) -> MembershipOut:
    """Affiliate: apply to join. Approved at once when the program does not require approval. A
    program with a data-sharing charter is joined by accepting its current version
    (`accept_charter_version`)."""
    data = body or MembershipApply()
    membership = programs.join(session, subject(principal), program_id, data.message)
    charters.require_on_joining(session, subject(principal), program_id, data.accept_charter_version)
    return membership_out(membership)


def _charter_out(row: Any) -> CharterOut:
    return CharterOut(id=row.id, program_id=row.program_id, version=row.version, terms=row.terms, text=row.text,
                      created_at=row.created_at)


@router.post("/v1/programs/{program_id}/charters", status_code=201, response_model=CharterOut, tags=["charters"])
def publish_charter(program_id: uuid.UUID, body: CharterIn, session: DbSession,
                    principal: SellerOrOperator) -> CharterOut:
    """Seller: publish a new version of the program's data-sharing charter. Affiliates accept it
    again; until one does, the version it accepted before governs its buyers."""
    terms = charters.Terms.of(body.terms.model_dump())
    return _charter_out(charters.publish(session, principal, program_id, terms, body.text))


@router.get("/v1/programs/{program_id}/charters", response_model=list[CharterOut], tags=["charters"])
def list_charters(program_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal) -> list[CharterOut]:
    """Every version of the program's charter, oldest first (the last is current)."""
    return [_charter_out(row) for row in charters.versions(session, program_id)]


@router.post("/v1/programs/{program_id}/charter-acceptances", status_code=201, response_model=CharterAcceptanceOut,
             tags=["charters"])
def accept_charter(program_id: uuid.UUID, body: CharterAcceptIn, session: DbSession,
                   principal: AffiliatePrincipal) -> CharterAcceptanceOut:
    """Affiliate: accept the program's current charter version (each new version needs it)."""
    row = charters.accept(session, subject(principal), program_id, body.version)
    return CharterAcceptanceOut(program_id=row.program_id, affiliate_id=row.affiliate_id, version=row.version,
                                accepted_at=row.accepted_at)


@router.get("/v1/programs/{program_id}/memberships", response_model=Page[MembershipOut], tags=["programs"])
def list_memberships(program_id: uuid.UUID, session: DbSession, principal: SellerOrOperator,
                     status: MembershipStatus | None = None, cursor: Cursor = None,
                     limit: Limit = 50) -> Page[MembershipOut]:
    """Seller: who applied to or belongs to your program (another seller's program is a 404)."""
    rows, next_cursor = programs.list_memberships(session, principal, program_id, status=status, cursor=cursor,
                                                  limit=limit)
    return Page(items=[membership_out(m, name) for m, name in rows], next_cursor=next_cursor)


def _decide(decision: str) -> Any:
    def handler(program_id: uuid.UUID, membership_id: uuid.UUID, session: DbSession, principal: SellerOrOperator,
                body: Annotated[MembershipDecision | None, Body()] = None) -> MembershipOut:
        reason = (body or MembershipDecision()).reason
        return membership_out(programs.decide(session, principal, program_id, membership_id, decision, reason))

    handler.__name__ = f"{decision}_membership"
    handler.__doc__ = f"Seller: {decision} a membership of your program (optional reason)."
    return handler


for _decision in ("approve", "reject", "remove"):
    router.add_api_route(
        f"/v1/programs/{{program_id}}/memberships/{{membership_id}}/{_decision}", _decide(_decision),
        methods=["POST"], response_model=MembershipOut, tags=["programs"],
    )


@router.post("/v1/programs/{program_id}/plan-versions", status_code=201, response_model=PlanVersionOut,
             tags=["programs"])
def create_plan_version(program_id: uuid.UUID, body: PlanVersionIn, session: DbSession,
                        principal: SellerOrOperator) -> PlanVersionOut:
    """Seller: a new commission plan version, in force from `effective_from` (default now, never
    in the past) until the next version. Versions are never edited; every commission records the
    version that computed it."""
    return version_out(programs.create_plan_version(session, principal, program_id, body))


@router.get("/v1/programs/{program_id}/plan-versions", response_model=Page[PlanVersionOut], tags=["programs"])
def list_plan_versions(program_id: uuid.UUID, session: DbSession, principal: CurrentPrincipal,
                       cursor: Cursor = None, limit: Limit = 50) -> Page[PlanVersionOut]:
    """Every version of the plan (the seller, operators and approved members)."""
    rows, next_cursor = programs.list_plan_versions(session, principal, program_id, cursor=cursor, limit=limit)
    return Page(items=[version_out(v) for v in rows], next_cursor=next_cursor)
