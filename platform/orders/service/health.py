"""Partner health: the time bombs, found by a scheduled evaluation over the rollups (issue 16).

Per affiliate and currency, over the last `WINDOW_DAYS` (30) against the window before:

- `falling_away`: sales this window under `FALLING_BELOW` (half) of the window before's, but
  not zero (zero is dormant);
- `dormant`: no paid order this window after at least one in the two windows before;
- `cost_per_new_customer`: commissions this window per new customer above
  `MAX_COST_PER_NEW_CUSTOMER` minor units (commissions without a new customer count as one);
- `refund_spike`: refunded / sold this window above `MAX_REFUND_RATE`, with at least
  `MIN_ORDERS` orders (a couple of refunds of a small partner is no spike);
- `click_fraud`: click-attributed orders per unique human click above `MAX_CLICK_CONVERSION`
  with at least `MIN_ORDERS` of them: buyers do not convert like that; an affiliate that clicks
  its own links before buying, or stuffs cookies, does.

An alarm opens once: `open_key` (rule, affiliate, currency) is UNIQUE while it is open, and the
insert that opens it does nothing when it is already open. It stays open until an operator
resolves it (whatever later evaluations find). Opening one sends the webhook `partner.alarm` to
the operator (`OPERATOR_WEBHOOK_URL`) and to each seller whose program the affiliate is an
approved member of, in the same transaction (delivered after commit, kernel.outbound).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from affiliates.models import Affiliate, ClickDailyCount, MembershipStatus, Program, ProgramMembership
from catalog.models import Seller
from kernel import locking, outbound
from kernel.clock import clock
from kernel.db import new_id
from kernel.permissions import OPERATOR_TEAM_ID
from orders.errors import AlarmNotFound, InvalidTransition
from orders.models import GrowthDaily, PartnerAlarm

WINDOW_DAYS = 30
FALLING_BELOW = 0.5
MAX_COST_PER_NEW_CUSTOMER = 5_000  # minor units
MAX_REFUND_RATE = 0.2
MAX_CLICK_CONVERSION = 0.5
MIN_ORDERS = 5
RULES = ("falling_away", "dormant", "cost_per_new_customer", "refund_spike", "click_fraud")
EVENT = "partner.alarm"


@dataclass(frozen=True)
class Finding:
    rule: str
    affiliate_id: uuid.UUID
    currency: str
    figures: dict[str, Any]


def findings(session: Session) -> list[Finding]:
    """What the rules see now (nothing written)."""
    today = clock.now().date()
    recent = today - timedelta(days=WINDOW_DAYS)
    previous = recent - timedelta(days=WINDOW_DAYS)
    earlier = previous - timedelta(days=WINDOW_DAYS)
    d = GrowthDaily

    def since(column: Any, start: Any, end: Any = None) -> Any:
        window = d.day >= start if end is None else (d.day >= start) & (d.day < end)
        return func.sum(case((window, column), else_=0))

    rows = session.execute(select(
        d.group_id, d.currency, since(d.revenue, recent), since(d.revenue, previous, recent),
        since(d.orders, recent), since(d.orders, earlier, recent), since(d.commissions, recent),
        since(d.new_customers, recent), since(d.refunded, recent), since(d.orders_via_click, recent),
    ).where(d.group_type == "affiliate", d.day >= earlier).group_by(d.group_id, d.currency))
    clicks = {aid: int(n or 0) for aid, n in session.execute(
        select(ClickDailyCount.affiliate_id, func.sum(ClickDailyCount.clicks))
        .where(ClickDailyCount.day >= recent).group_by(ClickDailyCount.affiliate_id))}
    found = []
    for affiliate_id, currency, *values in rows:
        revenue, before, orders, orders_before, commissions, new, refunded, via_click = (int(v or 0) for v in values)
        n_clicks = clicks.get(affiliate_id, 0)
        figures = {"revenue": revenue, "previous_revenue": before, "orders": orders, "commissions": commissions,
                   "new_customers": new, "refunded": refunded, "click_orders": via_click, "clicks": n_clicks,
                   "window_days": WINDOW_DAYS}
        sold = revenue + refunded
        checks = {
            "falling_away": before > 0 and 0 < revenue < before * FALLING_BELOW,
            "dormant": orders == 0 and orders_before > 0,
            "cost_per_new_customer": commissions > MAX_COST_PER_NEW_CUSTOMER * max(new, 1),
            "refund_spike": orders >= MIN_ORDERS and sold > 0 and refunded > sold * MAX_REFUND_RATE,
            "click_fraud": via_click >= MIN_ORDERS and via_click > n_clicks * MAX_CLICK_CONVERSION,
        }
        found += [Finding(rule, affiliate_id, currency, figures) for rule in RULES if checks[rule]]
    return found


def evaluate(session: Session, operator_webhook_url: str | None) -> list[PartnerAlarm]:
    """Open an alarm for every finding not already open; returns the alarms opened now."""
    opened = []
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for finding in sorted(findings(session), key=lambda f: (f.rule, str(f.affiliate_id), f.currency)):
        key = f"{finding.rule}:{finding.affiliate_id}:{finding.currency}"
        alarm_id = session.scalar(insert(PartnerAlarm).values(
            id=new_id(), rule=finding.rule, affiliate_id=finding.affiliate_id, currency=finding.currency,
            status="open", open_key=key, figures=finding.figures, created_at=clock.now(),
        ).on_conflict_do_nothing(index_elements=["open_key"]).returning(PartnerAlarm.id))
        if alarm_id is None:
            continue  # open already: once
        alarm = session.get(PartnerAlarm, alarm_id)
        assert alarm is not None
        _announce(session, alarm, operator_webhook_url)
        opened.append(alarm)
    return opened


def sellers_concerned(session: Session, affiliate_id: uuid.UUID) -> list[tuple[uuid.UUID, str | None]]:
    """(seller, its webhook URL) of each program the affiliate is an approved member of."""
    rows = session.execute(
        select(Seller.id, Seller.webhook_url).join(Program, Program.seller_id == Seller.id)
        .join(ProgramMembership, ProgramMembership.program_id == Program.id)
        .where(ProgramMembership.affiliate_id == affiliate_id,
               ProgramMembership.status == MembershipStatus.APPROVED.value)
        .order_by(Seller.id)
    )
    return [(seller_id, url) for seller_id, url in rows]


def _announce(session: Session, alarm: PartnerAlarm, operator_webhook_url: str | None) -> None:
    name = session.scalar(select(Affiliate.name).where(Affiliate.id == alarm.affiliate_id)) or ""
    data = {"alarm_id": str(alarm.id), "rule": alarm.rule, "affiliate_id": str(alarm.affiliate_id),
            "affiliate_name": name, "currency": alarm.currency, "figures": alarm.figures}
    outbound.emit(session, recipient_type="operator", recipient_id=OPERATOR_TEAM_ID, url=operator_webhook_url,
                  event_type=EVENT, data=data)
    for seller_id, url in sellers_concerned(session, alarm.affiliate_id):
        outbound.emit(session, recipient_type="seller", recipient_id=seller_id, url=url, event_type=EVENT, data=data)


def list_alarms(session: Session, *, status: str | None, affiliate_ids: Collection[uuid.UUID] | None,
                limit: int = 200) -> list[PartnerAlarm]:
    stmt = select(PartnerAlarm)
    if status is not None:
        stmt = stmt.where(PartnerAlarm.status == status)
    if affiliate_ids is not None:
        stmt = stmt.where(PartnerAlarm.affiliate_id.in_(affiliate_ids))
    return list(session.scalars(stmt.order_by(PartnerAlarm.created_at.desc(), PartnerAlarm.id.desc()).limit(limit)))


def members_of_seller(session: Session, seller_id: uuid.UUID | None) -> set[uuid.UUID]:
    """The affiliates a seller's alarms are about: its program's approved members."""
    return set(session.scalars(
        select(ProgramMembership.affiliate_id).join(Program, Program.id == ProgramMembership.program_id)
        .where(Program.seller_id == seller_id, ProgramMembership.status == MembershipStatus.APPROVED.value)))


def resolve(session: Session, alarm_id: uuid.UUID, note: str) -> PartnerAlarm:
    """Close an open alarm (under its row lock); the rule may open a new one at a later evaluation."""
    alarm = locking.lock(session, select(PartnerAlarm).where(PartnerAlarm.id == alarm_id)).scalar_one_or_none()
    if alarm is None:
        raise AlarmNotFound(f"no alarm {alarm_id}")
    if alarm.status != "open":
        raise InvalidTransition(f"alarm {alarm_id} is {alarm.status}")
    alarm.status, alarm.open_key, alarm.resolved_at = "resolved", None, clock.now()
    alarm.resolution_note = note[:500] or None
    session.flush()
    return alarm
