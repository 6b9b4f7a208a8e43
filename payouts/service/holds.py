"""Payout holds: an operator blocks a flagged payee's payouts (fraud review, a dispute, a
compliance check) and lifts the hold later. While held, previews list the payee as blocked with
the reason and a running batch skips it (payees.Payee.blocked_reason); no money moves."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kernel.clock import clock
from payouts.errors import HoldConflict, HoldNotFound, PayeeNotFound
from payouts.models import PayoutHold
from payouts.service.payees import load_payees


def place_hold(session: Session, owner_type: str, owner_id: uuid.UUID, reason: str, by: str) -> PayoutHold:
    payee = load_payees(session, [(owner_type, owner_id)])[(owner_type, owner_id)]
    if payee.status is None:
        raise PayeeNotFound(f"no {owner_type} {owner_id}")
    if payee.hold_reason is not None:
        raise HoldConflict(f"{owner_type} {owner_id} is already held: {payee.hold_reason}")
    hold = PayoutHold(owner_type=owner_type, owner_id=owner_id, reason=reason, created_by=by)
    try:
        # A savepoint: a hold placed concurrently for the same payee wins on the partial unique
        # index (one active hold per payee); this one gets the same 409 as above.
        with session.begin_nested():
            session.add(hold)
            session.flush()
    except IntegrityError:
        raise HoldConflict(f"{owner_type} {owner_id} was just held by another request") from None
    return hold


def release_hold(session: Session, hold_id: uuid.UUID, by: str) -> PayoutHold:
    hold = session.scalars(select(PayoutHold).where(PayoutHold.id == hold_id).with_for_update()).one_or_none()
    if hold is None:
        raise HoldNotFound(f"no payout hold {hold_id}")
    if hold.released_at is not None:
        raise HoldConflict(f"payout hold {hold_id} was already lifted")
    hold.released_at = clock.now()
    hold.released_by = by
    session.flush()
    return hold


def list_holds(
    session: Session, *, active: bool | None, after: uuid.UUID | None, limit: int
) -> list[PayoutHold]:
    """Newest first (ids are time-ordered); one row more than `limit` says there is a next page."""
    stmt = select(PayoutHold).order_by(PayoutHold.id.desc()).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(PayoutHold.id < after)
    if active is True:
        stmt = stmt.where(PayoutHold.released_at.is_(None))
    elif active is False:
        stmt = stmt.where(PayoutHold.released_at.is_not(None))
    return list(session.scalars(stmt))
