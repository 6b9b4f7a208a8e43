"""Quotas: a seller's monthly targets for an affiliate in its program, or for the program as a
whole (issue 16). Setting a target again replaces it (one per program, affiliate, month and
metric). What an affiliate's quota does to its commissions is the plan's rule 7
(affiliates.service.commission.plans); attainment is read live by orders.service.attainment."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from affiliates.errors import AffiliateNotFound, InvalidInput
from affiliates.models import Affiliate, Quota
from affiliates.schemas import QuotaIn
from affiliates.service.programs import owned_program
from kernel import locking
from kernel.auth import Principal


def set_quota(session: Session, principal: Principal, program_id: uuid.UUID, data: QuotaIn) -> Quota:
    program = owned_program(session, principal, program_id)
    if data.affiliate_id is not None and session.get(Affiliate, data.affiliate_id) is None:
        raise AffiliateNotFound(f"no affiliate {data.affiliate_id}")
    if data.metric == "new_customers" and data.affiliate_id is not None:
        raise InvalidInput("a new-customers quota is the program's (leave affiliate_id out)")
    if (data.metric == "revenue") != (data.currency is not None):
        raise InvalidInput("a revenue quota names its currency, and only a revenue quota does")
    found = locking.lock(session, select(Quota).where(
        Quota.program_id == program.id, Quota.month == data.month, Quota.metric == data.metric,
        Quota.affiliate_id.is_(None) if data.affiliate_id is None else Quota.affiliate_id == data.affiliate_id,
    )).scalar_one_or_none()
    if found is None:
        found = Quota(program_id=program.id, affiliate_id=data.affiliate_id, month=data.month, metric=data.metric)
        session.add(found)
    found.currency, found.target = data.currency, data.target
    session.flush()
    return found
