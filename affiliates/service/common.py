"""Helpers shared by the affiliate services: the caller's identity, pages, split lists."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from affiliates.errors import AffiliateNotApproved, AffiliateNotFound, InvalidSplits
from affiliates.models import Affiliate, AffiliateStatus
from affiliates.schemas import SplitShare, splits_json
from kernel.auth import Principal
from kernel.schemas import decode_cursor, encode_cursor

T = TypeVar("T")


def subject(principal: Principal) -> uuid.UUID:
    assert principal.subject_id is not None, "seller and affiliate keys always act for someone"
    return principal.subject_id


def approved_affiliate(session: Session, affiliate_id: uuid.UUID) -> Affiliate:
    """The calling affiliate, which must be approved to act (join programs, sell, share links)."""
    affiliate = session.get(Affiliate, affiliate_id)
    if affiliate is None:
        raise AffiliateNotFound(f"no affiliate {affiliate_id}")
    if affiliate.status != AffiliateStatus.APPROVED:
        raise AffiliateNotApproved(
            f"affiliate {affiliate_id} is {affiliate.status}; an operator must approve it first"
        )
    return affiliate


def page(
    session: Session, stmt: Select[Any], id_column: InstrumentedAttribute[uuid.UUID], cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """One cursor page, oldest first (ids are time-ordered), of a SELECT of one entity."""
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_column > after)
    rows = list(session.scalars(stmt.order_by(id_column).limit(limit + 1)))
    return rows[:limit], encode_cursor(rows[limit - 1].id) if len(rows) > limit else None


def checked_splits(
    session: Session, owner_id: uuid.UUID, splits: Sequence[SplitShare] | None
) -> list[dict[str, object]] | None:
    """A split list as stored: the owner must be in it (so its own share is explicit and the
    tie rule "listed first" is the owner's choice) and every partner an approved affiliate."""
    if not splits:
        return None
    ids = [s.affiliate_id for s in splits]
    if owner_id not in ids:
        raise InvalidSplits("list yourself in splits with your own weight (e.g. you 70, partner 30)")
    found = set(session.scalars(
        select(Affiliate.id).where(Affiliate.id.in_(ids), Affiliate.status == AffiliateStatus.APPROVED)
    ))
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise InvalidSplits(f"not approved affiliates: {', '.join(missing)}")
    return splits_json(list(splits))
