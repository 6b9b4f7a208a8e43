"""What the engine reads: one statement per loader.

The loaders' statements are built once per shape, with bind parameters: building a SELECT with
correlated subqueries and aliases (and SQLAlchemy's cache key for it) on every checkout cost
more CPU than running it (loadtests/README.md). The memoized statement objects are reused, and
run on the session's connection (Core): they select columns, not entities, so the ORM's
per-execution compile state is pure overhead. On PostgreSQL they are compiled to SQL text once
and sent with exec_driver_sql (`kernel.pgsql`); lists are bound as arrays there (= ANY) so the
text is constant. (Sessions here do not autoflush; callers flush.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session, aliased

from affiliates.commission.rules import month_key
from affiliates.commission.terms import AffiliateTerms, CouponTerms, MonthSales, ProgramTerms, normalize_coupon_code
from affiliates.errors import UnknownCoupon
from affiliates.models import (
    Affiliate,
    AffiliateMonthlySales,
    AffiliateStatus,
    Coupon,
    MembershipStatus,
    PlanVersion,
    Program,
    ProgramMembership,
    Storefront,
)
from affiliates.plans import Plan
from kernel.pgsql import aggregated_ids, collect_ids, in_list, precompile, run_built


def _built(stmt: Any, postgres: bool) -> Any:
    return precompile(stmt) if postgres else stmt


@lru_cache(maxsize=4096)
def _parse_plan(version_id: UUID, rules_json: str) -> Plan:
    return Plan.parse(json.loads(rules_json))


def parse_plan(version_id: UUID, rules: Mapping[str, Any]) -> Plan:
    """Plan versions are immutable, so a parsed plan is cached by (id, content) for the process."""
    return _parse_plan(version_id, json.dumps(rules, sort_keys=True))


@lru_cache(maxsize=8)
def _program_terms_stmt(with_member: bool, with_partners: bool, postgres: bool) -> Any:
    # Per program, the latest effective_from <= at: a correlated MAX that the unique index
    # (program_id, effective_from) answers with one index probe per program in the cart.
    in_force = (
        select(func.max(PlanVersion.effective_from))
        .where(PlanVersion.program_id == Program.id, PlanVersion.effective_from <= bindparam("at"))
        .correlate(Program)
        .scalar_subquery()
    )
    current = aliased(PlanVersion)
    columns: list[Any] = [
        Program.id, Program.seller_id, Program.attribution_window_days, Program.holding_period_days,
        Program.coupon_discount_bps, current.id.label("version_id"), current.rules,
    ]
    if with_member:
        member_status = (
            select(ProgramMembership.status)
            .where(ProgramMembership.program_id == Program.id,
                   ProgramMembership.affiliate_id == bindparam("affiliate_id"))
            .correlate(Program)
            .scalar_subquery()
        )
        columns.append(member_status.label("member_status"))
        # The affiliate's month-to-date sales with the program's seller, for the volume tiers
        # (read here, with the program, rather than in a statement of its own): orders summed
        # over currencies, the amount in the cart's currency. Index probes on the counters' key.
        sales = AffiliateMonthlySales
        with_seller = (sales.affiliate_id == bindparam("affiliate_id"), sales.seller_id == Program.seller_id,
                       sales.month == bindparam("month"))
        month_orders = select(func.sum(sales.orders)).where(*with_seller).correlate(Program).scalar_subquery()
        month_amount = (
            select(func.sum(sales.amount)).where(*with_seller, sales.currency == bindparam("currency"))
            .correlate(Program).scalar_subquery()
        )
        columns += [month_orders.label("month_orders"), month_amount.label("month_amount")]
    if with_partners:
        partner = aliased(Affiliate)
        # One list per program: array_agg on PostgreSQL, a comma-separated text elsewhere.
        member_partners = (
            select(collect_ids(postgres)(ProgramMembership.affiliate_id))
            .join(partner, partner.id == ProgramMembership.affiliate_id)
            .where(ProgramMembership.program_id == Program.id,
                   ProgramMembership.status == MembershipStatus.APPROVED.value,
                   partner.status == AffiliateStatus.APPROVED.value,
                   in_list(ProgramMembership.affiliate_id, "partner_ids", postgres))
            .correlate(Program)
            .scalar_subquery()
        )
        columns.append(member_partners.label("member_partners"))
    return _built(
        select(*columns)
        .outerjoin(current, and_(current.program_id == Program.id, current.effective_from == in_force))
        .where(in_list(Program.seller_id, "seller_ids", postgres)),
        postgres,
    )


def load_program_terms(
    session: Session, seller_ids: Collection[UUID], affiliate_id: UUID | None, at: datetime,
    partner_ids: Collection[UUID] = (), currency: str = "",
) -> dict[UUID, ProgramTerms]:
    """The programs of `seller_ids`, each with its plan version in force at `at` (the latest
    `effective_from <= at`), whether `affiliate_id` is an approved member, its month-to-date
    sales with the seller before `at` (amounts in `currency`), and which of `partner_ids` (its
    split partners) are approved affiliates and approved members: one SELECT."""
    with_member = affiliate_id is not None
    with_partners = with_member and bool(partner_ids)
    params: dict[str, Any] = {"seller_ids": list(seller_ids), "at": at}
    if with_member:
        params.update(affiliate_id=affiliate_id, month=month_key(at), currency=currency)
    if with_partners:
        params["partner_ids"] = list(partner_ids)
    rows = run_built(session, _program_terms_stmt, params, with_member, with_partners).all()
    terms: dict[UUID, ProgramTerms] = {}
    for row in rows:
        plan = parse_plan(row.version_id, row.rules) if row.version_id is not None else None
        status = row.member_status if with_member else None
        terms[row.seller_id] = ProgramTerms(
            program_id=row.id, seller_id=row.seller_id, attribution_window_days=row.attribution_window_days,
            holding_period_days=row.holding_period_days, coupon_discount_bps=row.coupon_discount_bps,
            plan_version_id=row.version_id, plan=plan,
            affiliate_is_member=status == MembershipStatus.APPROVED.value,
            member_partners=aggregated_ids(row.member_partners) if with_partners else frozenset(),
            # sum(bigint) is numeric on PostgreSQL: the driver returns a Decimal.
            month_sales=(MonthSales(int(row.month_orders or 0), int(row.month_amount or 0)) if with_member
                         else MonthSales()),
        )
    return terms


@lru_cache(maxsize=4)
def _affiliate_terms_stmt(with_storefront: bool, postgres: bool) -> Any:
    recruiter = aliased(Affiliate)
    columns: list[Any] = [Affiliate.status, Affiliate.recruited_by_affiliate_id, Affiliate.splits,
                          recruiter.status.label("recruiter_status"), Affiliate.email]
    stmt = select(*columns).outerjoin(recruiter, recruiter.id == Affiliate.recruited_by_affiliate_id)
    if with_storefront:
        stmt = stmt.add_columns(Storefront.splits.label("storefront_splits")).outerjoin(
            Storefront, and_(Storefront.id == bindparam("storefront_id"), Storefront.affiliate_id == Affiliate.id)
        )
    return _built(stmt.where(Affiliate.id == bindparam("affiliate_id")), postgres)


def load_affiliate_terms(session: Session, affiliate_id: UUID, storefront_id: UUID | None) -> AffiliateTerms | None:
    """The affiliate, its recruiter's status, and the split list in force (storefront's, else its
    own): one SELECT."""
    params: dict[str, Any] = {"affiliate_id": affiliate_id}
    if storefront_id is not None:
        params["storefront_id"] = storefront_id
    row = run_built(session, _affiliate_terms_stmt, params, storefront_id is not None).first()
    if row is None:
        return None
    raw_splits = (row.storefront_splits if storefront_id is not None else None) or row.splits or []
    splits = tuple((uuid.UUID(str(s["affiliate_id"])), int(s["weight"])) for s in raw_splits)
    if splits and sum(w for _, w in splits) <= 0:
        splits = ()
    recruiter_id = (
        row.recruited_by_affiliate_id
        if row.recruited_by_affiliate_id is not None and row.recruiter_status == AffiliateStatus.APPROVED
        else None
    )
    return AffiliateTerms(
        affiliate_id=affiliate_id, approved=row.status == AffiliateStatus.APPROVED,
        recruiter_id=recruiter_id, splits=splits, email=row.email,
    )


@lru_cache(maxsize=2)
def _coupon_stmt(postgres: bool) -> Any:
    return _built(
        select(Coupon.id, Coupon.seller_id, Coupon.affiliate_id, Affiliate.email)
        .join(Affiliate, Affiliate.id == Coupon.affiliate_id)
        .where(Coupon.code == bindparam("code"), Coupon.active.is_(True)),
        postgres,
    )


def load_coupon(session: Session, code: str) -> CouponTerms:
    """The active coupon with this code (case and surrounding spaces ignored) and its affiliate's
    e-mail: one SELECT. Raises UnknownCoupon."""
    normalized = normalize_coupon_code(code)
    row = run_built(session, _coupon_stmt, {"code": normalized}).first()
    if row is None:
        raise UnknownCoupon(f"coupon code {code!r} does not exist or is no longer active")
    return CouponTerms(coupon_id=row.id, seller_id=row.seller_id, affiliate_id=row.affiliate_id,
                       code=normalized, affiliate_email=row.email)
