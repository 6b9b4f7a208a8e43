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

from sqlalchemy import Select, Uuid, and_, bindparam, case, cast, func, literal_column, select, true, union_all
from sqlalchemy.orm import Session, aliased

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
    Quota,
    Storefront,
)
from affiliates.service.commission.plans import Plan
from affiliates.service.commission.rules import month_key
from affiliates.service.commission.terms import (
    AffiliateTerms,
    CouponTerms,
    MonthSales,
    ProgramTerms,
    normalize_coupon_code,
)
from affiliates.service.commission.terms import (
    Quota as QuotaTerms,
)
from kernel.pgsql import Built, aggregated_ids, collect_ids, in_list, precompile, run_built


def _built(stmt: Select[*tuple[Any, ...]], postgres: bool) -> Built:
    return precompile(stmt) if postgres else stmt


@lru_cache(maxsize=4096)
def _parse_plan(version_id: UUID, rules_json: str) -> Plan:
    return Plan.parse(json.loads(rules_json))


def parse_plan(version_id: UUID, rules: Mapping[str, Any]) -> Plan:
    """Plan versions are immutable, so a parsed plan is cached by (id, content) for the process."""
    return _parse_plan(version_id, json.dumps(rules, sort_keys=True))


def _programs(with_member: bool) -> Select[*tuple[Any, ...]]:
    """SELECT the programs of `:seller_ids` with the plan version in force at `:at`; with
    `with_member`, also the status of `:affiliate_id`'s membership and its month-to-date sales
    with the seller (`:month`, amounts in `:currency`)."""
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
        # The affiliate's quota in the program this month (plan rule 7): two index probes, in
        # this statement too. A revenue target counts only in its own currency.
        mine = (Quota.program_id == Program.id, Quota.affiliate_id == bindparam("affiliate_id"),
                Quota.month == bindparam("month"))
        quota_orders = select(Quota.target).where(*mine, Quota.metric == "orders").correlate(Program)
        quota_amount = select(Quota.target).where(*mine, Quota.metric == "revenue",
                                                  Quota.currency == bindparam("currency")).correlate(Program)
        columns += [quota_orders.scalar_subquery().label("quota_orders"),
                    quota_amount.scalar_subquery().label("quota_amount")]
    return (
        select(*columns)
        .outerjoin(current, and_(current.program_id == Program.id, current.effective_from == in_force))
    )


def _program_params(seller_ids: Collection[UUID], affiliate_id: UUID | None, at: datetime,
                    currency: str) -> dict[str, Any]:
    params: dict[str, Any] = {"seller_ids": list(seller_ids), "at": at}
    if affiliate_id is not None:
        params.update(affiliate_id=affiliate_id, month=month_key(at), currency=currency)
    return params


def _program_terms(row: Any, with_member: bool, member_partners: frozenset[UUID] = frozenset()) -> ProgramTerms:
    plan = parse_plan(row.version_id, row.rules) if row.version_id is not None else None
    status = row.member_status if with_member else None
    return ProgramTerms(
        program_id=row.id, seller_id=row.seller_id, attribution_window_days=row.attribution_window_days,
        holding_period_days=row.holding_period_days, coupon_discount_bps=row.coupon_discount_bps,
        plan_version_id=row.version_id, plan=plan, affiliate_is_member=status == MembershipStatus.APPROVED.value,
        member_partners=member_partners,
        # sum(bigint) is numeric on PostgreSQL: the driver returns a Decimal.
        month_sales=(MonthSales(int(row.month_orders or 0), int(row.month_amount or 0)) if with_member
                     else MonthSales()),
        quota=(QuotaTerms(row.quota_orders, row.quota_amount)
               if with_member and (row.quota_orders is not None or row.quota_amount is not None) else None),
    )


@lru_cache(maxsize=4)
def _program_terms_stmt(with_member: bool, postgres: bool) -> Built:
    return _built(_programs(with_member).where(in_list(Program.seller_id, "seller_ids", postgres)), postgres)


def load_program_terms(
    session: Session, seller_ids: Collection[UUID], affiliate_id: UUID | None, at: datetime, currency: str = "",
) -> dict[UUID, ProgramTerms]:
    """The programs of `seller_ids`, each with its plan version in force at `at` (the latest
    `effective_from <= at`), and, given `affiliate_id`, whether it is an approved member and its
    month-to-date sales with the seller before `at` (amounts in `currency`): one SELECT."""
    with_member = affiliate_id is not None
    rows = run_built(session, _program_terms_stmt, _program_params(seller_ids, affiliate_id, at, currency),
                     with_member).all()
    return {row.seller_id: _program_terms(row, with_member) for row in rows}


def _split_partner_ids(splits: Any, postgres: bool) -> Any:
    """SELECT the affiliate ids a split list (JSON: [{"affiliate_id", "weight"}, ...]) names, in
    the form an affiliate id column has on this backend (uuid; SQLite: 32 hex digits)."""
    if postgres:
        # A list never set is JSON null, which json_array_elements refuses: no elements then.
        listed = case((func.json_typeof(splits) == literal_column("'array'"), splits))
        element = func.json_array_elements(listed).table_valued("value")
        return select(cast(element.c.value.op("->>")(literal_column("'affiliate_id'")), Uuid()))
    element = func.json_each(splits).table_valued("value")  # a JSON null is one NULL element here
    return select(func.lower(func.replace(func.json_extract(element.c.value, literal_column("'$.affiliate_id'")),
                                          literal_column("'-'"), literal_column("''"))))


@lru_cache(maxsize=4)
def _terms_stmt(with_storefront: bool, postgres: bool) -> Built:
    """The affiliate (its status, recruiter's status, e-mail, split lists) and, one row each, the
    programs of the cart's sellers with its membership, month-to-date sales and which of its
    split partners are approved affiliates and approved members (at least one row: the programs
    are outer-joined)."""
    recruiter = aliased(Affiliate)
    programs = _programs(True).where(in_list(Program.seller_id, "seller_ids", postgres)).subquery("programs")
    columns: list[Any] = [Affiliate.status, Affiliate.recruited_by_affiliate_id, Affiliate.splits,
                          recruiter.status.label("recruiter_status"), Affiliate.email]
    source: Any = Affiliate.__table__.outerjoin(recruiter, recruiter.id == Affiliate.recruited_by_affiliate_id)
    # Candidate partners: everyone the split lists name (a superset of the list in force is
    # enough: the split rule only asks about the partners of the list in force).
    candidates = _split_partner_ids(Affiliate.splits, postgres).correlate(Affiliate)
    if with_storefront:
        columns.append(Storefront.splits.label("storefront_splits"))
        source = source.outerjoin(
            Storefront, and_(Storefront.id == bindparam("storefront_id"), Storefront.affiliate_id == Affiliate.id))
        candidates = union_all(candidates, _split_partner_ids(Storefront.splits, postgres).correlate(Storefront))
    partner = aliased(Affiliate)
    member_partners = (
        select(collect_ids(postgres)(ProgramMembership.affiliate_id))
        .join(partner, partner.id == ProgramMembership.affiliate_id)
        .where(ProgramMembership.program_id == programs.c.id,
               ProgramMembership.status == MembershipStatus.APPROVED.value,
               partner.status == AffiliateStatus.APPROVED.value,
               ProgramMembership.affiliate_id.in_(candidates))
        .correlate(programs)
        .scalar_subquery()
    )
    stmt = (
        select(*columns, *programs.c, member_partners.label("member_partners"))
        .select_from(source.outerjoin(programs, true()))
        .where(Affiliate.id == bindparam("affiliate_id"))
    )
    return _built(stmt, postgres)


def load_terms(
    session: Session, seller_ids: Collection[UUID], affiliate_id: UUID, storefront_id: UUID | None, at: datetime,
    currency: str,
) -> tuple[AffiliateTerms | None, dict[UUID, ProgramTerms]]:
    """What settling a cart attributed to `affiliate_id` needs, in ONE SELECT: the affiliate (its
    recruiter's status and the split list in force: the storefront's, else its own; None if there
    is no such affiliate) and the programs of `seller_ids` (as `load_program_terms` reads them,
    with which of the affiliate's split partners are approved affiliates and approved members)."""
    params = _program_params(seller_ids, affiliate_id, at, currency)
    if storefront_id is not None:
        params["storefront_id"] = storefront_id
    rows = run_built(session, _terms_stmt, params, storefront_id is not None).all()
    if not rows:
        return None, load_program_terms(session, seller_ids, affiliate_id, at, currency)
    first = rows[0]
    raw_splits = (first.storefront_splits if storefront_id is not None else None) or first.splits or []
    splits = tuple((uuid.UUID(str(s["affiliate_id"])), int(s["weight"])) for s in raw_splits)
    if splits and sum(w for _, w in splits) <= 0:
        splits = ()
    recruiter_id = (
        first.recruited_by_affiliate_id
        if first.recruited_by_affiliate_id is not None and first.recruiter_status == AffiliateStatus.APPROVED
        else None
    )
    affiliate = AffiliateTerms(
        affiliate_id=affiliate_id, approved=first.status == AffiliateStatus.APPROVED,
        recruiter_id=recruiter_id, splits=splits, email=first.email,
    )
    programs = {row.seller_id: _program_terms(row, True, aggregated_ids(row.member_partners))
                for row in rows if row.id is not None}
    return affiliate, programs


@lru_cache(maxsize=2)
def _coupon_stmt(postgres: bool) -> Built:
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
