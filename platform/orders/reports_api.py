"""Report routes (growth, funnel): thin; each reads rollups through one service function.

Every report answers JSON, or CSV with `Accept: text/csv` or `?format=csv`. Who sees what: an
operator every group; a seller its own seller row and its program's; an affiliate its own row and
its storefronts'.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from affiliates.models import Program
from affiliates.service import traffic
from affiliates.service.programs import owned_program
from kernel.auth import Principal, Role
from kernel.clock import clock
from kernel.deps import CurrentPrincipal, DbSession, StrictQuery, get_runtime
from kernel.errors import Forbidden, Unprocessable
from kernel.runtime import Runtime
from orders.models import PartnerAlarm
from orders.schemas import (
    AlarmOut,
    AlarmResolveIn,
    FunnelRowOut,
    GrowthRowOut,
    QuotaAttainmentOut,
    SimulatedPartnerOut,
    SimulationIn,
    SimulationOut,
    SimulationTotalOut,
)
from orders.service import attainment, funnel, health, queries, reports, simulation

router = APIRouter(prefix="/v1", dependencies=[StrictQuery])

Days = Annotated[int, Query(ge=1, le=730, description="the period: the last N days up to today")]
Format = Annotated[Literal["json", "csv"] | None, Query(description="csv: the same rows as CSV")]
AcceptHeader = Annotated[str | None, Header(alias="Accept", include_in_schema=False)]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "the rows (JSON, or CSV when asked for)"}}


def scope(session: Session, principal: Principal, group_by: str) -> set[uuid.UUID] | None:
    """The groups of `group_by` the caller may read (None: every group, an operator)."""
    if principal.is_operator:
        return None
    subject = principal.subject_id
    allowed = ("seller", "program") if principal.role is Role.SELLER else ("affiliate", "storefront")
    if group_by not in allowed:
        raise Forbidden(f"a {principal.role.value} key reads group_by={' or '.join(allowed)}")
    if group_by == "program":
        return set(session.scalars(select(Program.id).where(Program.seller_id == subject)))
    if group_by == "storefront":
        return queries.storefront_ids_of(session, subject)
    assert subject is not None
    return {subject}


def wants_csv(fmt: str | None, accept: str | None) -> bool:
    return fmt == "csv" or (fmt is None and accept is not None and "text/csv" in accept)


def csv_response(rows: Sequence[BaseModel], model: type[BaseModel], filename: str) -> Response:
    """One line per row; a dict field becomes one column per key (`sources.click`)."""
    flat = [_flatten(row.model_dump(mode="json")) for row in rows]
    columns = [name for name in model.model_fields if name not in ("sources",)]
    extra = sorted({key for row in flat for key in row if key not in columns})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns + extra, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


@router.get("/reports/growth", response_model=list[GrowthRowOut], tags=["reports"], responses=CSV_RESPONSE)
def growth_report(
    session: DbSession, principal: CurrentPrincipal,
    group_by: Annotated[reports.GroupBy, Query(description="whose figures: one row per group and currency")],
    days: Days = 90, format: Format = None, accept: AcceptHeader = None,
) -> Any:
    """Growth figures per seller, affiliate, storefront or program, read from the daily rollups:
    customers (new, returning), average order value, purchase frequency, revenue net of refunds,
    fees, commissions net of clawbacks and per new customer, clicks and close ratio, sources, the
    period before (`previous_*`, `revenue_change`), and partners falling away. Sellers read
    group_by=seller or program (their own), affiliates affiliate or storefront (their own),
    operators everything."""
    rows = [GrowthRowOut.model_validate(asdict(row)) for row in reports.growth(
        session, group_by, days=days, only=scope(session, principal, group_by))]
    if wants_csv(format, accept):
        return csv_response(rows, GrowthRowOut, f"growth-{group_by}.csv")
    return rows


@router.get("/reports/funnel", response_model=list[FunnelRowOut], tags=["reports"], responses=CSV_RESPONSE)
def funnel_report(
    session: DbSession, principal: CurrentPrincipal, runtime: Annotated[Runtime, Depends(get_runtime)],
    group_by: Annotated[funnel.FunnelBy, Query(description="whose funnel: one row per group")],
    days: Days = 30,
    repeat_window_days: Annotated[int, Query(ge=1, le=365, description="a repeat buyer pays again within")] = 30,
    format: Format = None, accept: AcceptHeader = None,
) -> Any:
    """The Four E's per affiliate, storefront or program: Exploration (visits, clicks), Evaluation
    (product views), Engagement (carts started, checkouts begun), Experience (paid orders, repeat
    buyers, advocates), with the rate from each stage to the next. Traffic is counted server-side
    without bots; with Redis it reaches the report within a minute (the flush task). Sellers read
    group_by=program (their own), affiliates affiliate or storefront (their own)."""
    if not runtime.settings.redis_url:  # this process's counters, before reading them
        traffic.flush(session, runtime.store)
    rows = [FunnelRowOut.model_validate(asdict(row)) for row in funnel.funnel(
        session, group_by, days=days, repeat_window_days=repeat_window_days,
        only=scope(session, principal, group_by))]
    if wants_csv(format, accept):
        return csv_response(rows, FunnelRowOut, f"funnel-{group_by}.csv")
    return rows


@router.get("/quotas", response_model=list[QuotaAttainmentOut], tags=["reports"], responses=CSV_RESPONSE)
def list_quotas(
    session: DbSession, principal: CurrentPrincipal,
    month: Annotated[str | None, Query(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$",
                                       description="YYYY-MM (UTC); default this month")] = None,
    format: Format = None, accept: AcceptHeader = None,
) -> Any:
    """The month's quotas with their attainment so far: an affiliate's from the month-to-date
    sales its commissions read (so the quota bonus and this never disagree), a program's from the
    growth rollups. Sellers read their program's, affiliates their own, operators all."""
    program_ids: set[uuid.UUID] | None = None
    affiliate_id = None
    if not principal.is_operator:
        if principal.role is Role.SELLER:
            program_ids = set(session.scalars(select(Program.id).where(Program.seller_id == principal.subject_id)))
        else:
            affiliate_id = principal.subject_id
    when = clock.now()
    rows = [QuotaAttainmentOut.model_validate(asdict(row)) for row in attainment.attainment(
        session, month or f"{when.year:04d}-{when.month:02d}", program_ids=program_ids, affiliate_id=affiliate_id)]
    if wants_csv(format, accept):
        return csv_response(rows, QuotaAttainmentOut, "quotas.csv")
    return rows


def _alarm_out(alarm: PartnerAlarm, names: dict[uuid.UUID, str]) -> AlarmOut:
    return AlarmOut(id=alarm.id, rule=alarm.rule, affiliate_id=alarm.affiliate_id,
                    affiliate_name=names.get(alarm.affiliate_id, ""), currency=alarm.currency, status=alarm.status,
                    figures=alarm.figures, opened_at=alarm.created_at, resolved_at=alarm.resolved_at,
                    resolution_note=alarm.resolution_note)


@router.get("/alarms", response_model=list[AlarmOut], tags=["reports"])
def list_alarms(
    session: DbSession, principal: CurrentPrincipal,
    status: Annotated[Literal["open", "resolved"] | None, Query(description="default: both")] = None,
) -> list[AlarmOut]:
    """Partner-health alarms, newest first (at most 200): a partner falling away, gone dormant,
    costing too much per new customer, refunding too much, or converting clicks like fraud. The
    scheduled evaluation opens each once; it stays open until an operator resolves it. Sellers see
    the alarms of their program's affiliates."""
    affiliates = None if principal.is_operator else health.members_of_seller(session, principal.subject_id)
    rows = health.list_alarms(session, status=status, affiliate_ids=affiliates)
    names = reports.names_of(session, "affiliate", {row.affiliate_id for row in rows})
    return [_alarm_out(row, names) for row in rows]


@router.post("/alarms/{alarm_id}/resolve", response_model=AlarmOut, tags=["reports"])
def resolve_alarm(alarm_id: uuid.UUID, body: AlarmResolveIn, session: DbSession,
                  principal: CurrentPrincipal) -> AlarmOut:
    """Operator: close an open alarm (409 when it is resolved already); the rule may open a new
    one at a later evaluation."""
    alarm = health.resolve(session, alarm_id, body.note)
    return _alarm_out(alarm, reports.names_of(session, "affiliate", {alarm.affiliate_id}))


MAX_SIMULATION_DAYS = 366


@router.post("/programs/{program_id}/simulations", response_model=SimulationOut, tags=["programs"])
def simulate_plan(program_id: uuid.UUID, body: SimulationIn, session: DbSession,
                  principal: CurrentPrincipal) -> SimulationOut:
    """Seller: what a draft plan version would have paid on your program's paid orders of a
    period (at most a year), partner by partner, beside what they earned, with the cost to you;
    the same engine as checkout over the stored orders; nothing is written. Apply it with
    `POST /v1/programs/{program_id}/plan-versions` from a date."""
    program = owned_program(session, principal, program_id)
    until = body.until or clock.now()
    if not body.since < until or (until - body.since).days > MAX_SIMULATION_DAYS:
        raise Unprocessable(f"the period runs from since to until, at most {MAX_SIMULATION_DAYS} days")
    result = simulation.simulate(session, program.id, program.seller_id, body.rules.as_json(), body.since, until)
    return SimulationOut(
        program_id=program.id, since=body.since, until=until, orders=result.orders, lines=result.lines,
        partners=[SimulatedPartnerOut(affiliate_id=p.affiliate_id, name=p.name, currency=p.currency, earned=p.earned,
                                      would_earn=p.would_earn, difference=p.would_earn - p.earned)
                  for p in result.partners],
        cost_to_seller=[SimulationTotalOut(currency=c, earned=e, would_earn=w, difference=w - e)
                        for c, (e, w) in sorted(result.totals.items())],
    )
