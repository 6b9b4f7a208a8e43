"""Coupon codes: a seller ties a code to an affiliate in its program. A buyer using it gets the
program's `coupon_discount_bps` (as of the order time) off that seller's lines, and the order is
attributed to the affiliate unless a storefront or a valid click comes first."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from affiliates.errors import CodeTaken, CouponNotFound, NotProgramMember
from affiliates.models import Coupon, Program
from affiliates.service.commission import normalize_coupon_code
from affiliates.service.common import page
from affiliates.service.programs import is_approved_member, owned_program
from kernel.auth import Principal


def create(session: Session, principal: Principal, program_id: uuid.UUID, code: str,
           affiliate_id: uuid.UUID) -> Coupon:
    program = owned_program(session, principal, program_id)
    if not is_approved_member(session, affiliate_id, program.seller_id):
        raise NotProgramMember(f"affiliate {affiliate_id} is not an approved member of this program")
    normalized = normalize_coupon_code(code)
    if session.scalar(select(Coupon.id).where(Coupon.code == normalized)) is not None:
        raise CodeTaken(f"coupon code {normalized!r} is taken")
    coupon = Coupon(code=normalized, program_id=program.id, seller_id=program.seller_id, affiliate_id=affiliate_id)
    session.add(coupon)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise CodeTaken(f"coupon code {normalized!r} is taken") from None
    return coupon


def list_for(session: Session, principal: Principal, program_id: uuid.UUID, *, cursor: str | None,
             limit: int) -> tuple[list[Coupon], str | None]:
    owned_program(session, principal, program_id)
    return page(session, select(Coupon).where(Coupon.program_id == program_id), Coupon.id, cursor, limit)


def list_mine(session: Session, affiliate_id: uuid.UUID, *, cursor: str | None,
              limit: int) -> tuple[list[Coupon], str | None]:
    return page(session, select(Coupon).where(Coupon.affiliate_id == affiliate_id), Coupon.id, cursor, limit)


def deactivate(session: Session, principal: Principal, program_id: uuid.UUID, coupon_id: uuid.UUID) -> Coupon:
    owned_program(session, principal, program_id)
    coupon = session.get(Coupon, coupon_id)
    if coupon is None or coupon.program_id != program_id:
        raise CouponNotFound(f"no coupon {coupon_id} in program {program_id}")
    coupon.active = False
    session.flush()
    return coupon


def discount_bps(session: Session, program_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not program_ids:
        return {}
    rows = session.execute(select(Program.id, Program.coupon_discount_bps).where(Program.id.in_(program_ids)))
    return {row[0]: row[1] for row in rows}
