"""The commission engine: attribution and every party's share of a cart, in one place.

Checkout (orders.checkout) and the preview endpoint (POST /v1/commissions/preview)
both call `resolve_attribution` then `settle_cart`, so a preview is exactly what checkout books.

Split of one order line (all integer minor units; rates in basis points):

    gross        = unit_amount * quantity
    discount     = bps_share(gross, program.coupon_discount_bps)   only on the coupon seller's lines
    amount       = gross - discount                                  what the buyer pays
    platform_fee = bps_share(amount, platform_fee_bps)
    commissions  = the plan's pool split between partners + recruiter override  (affiliates.plans)
    seller_net   = amount - platform_fee - sum(commissions)          the residual: nothing is lost

`bps_share` rounds half to even; splits use largest remainder, ties to the partner listed first
(`kernel.money.allocate`). Every commission is funded by the seller (it comes out of the
seller's residual); the platform fee is computed on the amount, independently of commissions.

Attribution rule (one per order; `resolve_attribution`):
1. an order placed through a storefront -> that storefront's affiliate (source "storefront");
2. else the click the attribution token names, if it is valid: it exists, is not in the future,
   its affiliate is approved, and `at <= clicked_at + window` (inclusive) where window is the
   longest attribution window among the programs, of the cart's sellers when `seller_ids` is
   given, that the affiliate is an approved member of (source "click"). It is the LAST click
   because every click overwrites the buyer's token cookie;
3. else the owner of the coupon code (source "coupon");
4. else nobody (source "none").
If the attributed affiliate's email equals the buyer's email (case-insensitive) it is a
self-referral: attribution is kept and flagged (`self_referral=True`) but earns nothing.

Which lines earn (`settle_cart`): a line earns commission only when its seller has a program
with a plan version in force at `at`, the attributed affiliate is approved and an approved
member of that program, and (click attribution) `at <= clicked_at + that program's window`.
Other lines settle to fee + seller net only; `LineSettlement.no_commission_reason` says why.

Splits live on the selling affiliate: a storefront's `splits` list for storefront orders, else
the affiliate's own default `splits` (profile), else the affiliate keeps the whole pool. A line's
pool is split only among the partners that are approved members of that line's program (the
selling affiliate always is, or the line would not earn): a partner the seller never admitted,
or removed, takes nothing of that seller's sales, and the pool is split by the weights of the
partners that remain (with only the selling affiliate left, it keeps the whole pool).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import and_, any_, bindparam, func, select
from sqlalchemy.orm import Session, aliased

from affiliates.errors import CouponNotApplicable, UnknownCoupon, UnknownStorefront
from affiliates.models import (
    Affiliate,
    AffiliateMonthlySales,
    AffiliateStatus,
    Click,
    Coupon,
    MembershipStatus,
    PlanVersion,
    Program,
    ProgramMembership,
    Storefront,
)
from affiliates.plans import Plan, Rate, evaluate_line
from kernel.clock import as_utc
from kernel.money import allocate, bps_share
from kernel.pgsql import is_postgres, precompile

# ---------------------------------------------------------------------------------------------
# The interface checkout uses
# ---------------------------------------------------------------------------------------------

ROLE_AFFILIATE = "affiliate"
ROLE_SPLIT_PARTNER = "split_partner"
ROLE_RECRUITER = "recruiter_override"
FUNDED_BY_SELLER = "seller"

SOURCE_STOREFRONT = "storefront"
SOURCE_CLICK = "click"
SOURCE_COUPON = "coupon"
SOURCE_NONE = "none"


@dataclass(frozen=True, slots=True)
class CartLine:
    """A priced order line (prices come from the catalog, never the client). Minor units."""

    variant_id: UUID
    product_id: UUID
    seller_id: UUID
    quantity: int
    unit_amount: int
    currency: str

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


@dataclass(frozen=True, slots=True)
class Attribution:
    affiliate_id: UUID | None
    source: str  # "storefront" | "click" | "coupon" | "none"
    storefront_id: UUID | None = None
    click_id: UUID | None = None
    coupon_id: UUID | None = None
    self_referral: bool = False  # flagged; earns nothing
    clicked_at: datetime | None = None  # click attribution: per-program windows are checked per seller
    # True when the caller named the storefront's affiliate (checkout reads it from the storefront
    # cache) and nobody has compared the buyer with that affiliate yet: `settle_cart` decides
    # `self_referral` when it reads the affiliate anyway, and returns the decided attribution.
    self_referral_pending: bool = False


@dataclass(frozen=True, slots=True)
class CommissionShare:
    affiliate_id: UUID
    amount: int  # minor units, >= 0
    role: str  # "affiliate" | "split_partner" | "recruiter_override"
    program_id: UUID
    plan_version_id: UUID
    funded_by: str = FUNDED_BY_SELLER
    holding_period_days: int = 0  # the program's holding period at order time


@dataclass(frozen=True, slots=True)
class LineSettlement:
    line_index: int
    gross: int  # unit_amount * quantity before discount
    discount: int  # coupon discount on this line (>= 0)
    amount: int  # what the buyer pays for the line = gross - discount
    platform_fee: int  # bps_share(amount, platform_fee_bps)
    commissions: tuple[CommissionShare, ...]  # only shares > 0
    seller_net: int  # residual: amount - platform_fee - sum(commissions)
    seller_id: UUID | None = None
    program_id: UUID | None = None
    plan_version_id: UUID | None = None  # the version in force at `at`, even when nothing was earned
    # Why this line earns nothing: no_attribution | self_referral | no_program | no_plan |
    # affiliate_not_approved | not_member | outside_window; None when the line earns.
    no_commission_reason: str | None = None

    @property
    def commission_total(self) -> int:
        return sum(c.amount for c in self.commissions)


@dataclass(frozen=True, slots=True)
class Settlement:
    lines: tuple[LineSettlement, ...]
    attribution: Attribution
    first_order_sellers: frozenset[UUID]  # sellers for whom this buyer is a new customer


# (seller_ids, buyer_email) -> the sellers this buyer has never ordered from. The real query
# reads orders, which this package cannot import: checkout passes the orders package's check,
# and the assembly hands it (as a SessionFirstOrderCheck) to the preview endpoint.
FirstOrderCheck = Callable[[frozenset[UUID], str], set[UUID]]
# The same with the session, as the orders package defines it.
SessionFirstOrderCheck = Callable[[Session, frozenset[UUID], str], set[UUID]]


def every_seller_is_new(seller_ids: frozenset[UUID], _buyer_email: str) -> set[UUID]:
    """The check that reads no history: every buyer is new to every seller."""
    return set(seller_ids)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_coupon_code(code: str) -> str:
    return code.strip().upper()


# ---------------------------------------------------------------------------------------------
# Attribution
# ---------------------------------------------------------------------------------------------


def resolve_attribution(
    session: Session,
    *,
    storefront_id: UUID | None,
    attribution_token: str | None,
    coupon_code: str | None,
    buyer_email: str,
    at: datetime,
    seller_ids: Collection[UUID] | None = None,
    storefront_affiliate_id: UUID | None = None,
) -> Attribution:
    """Who an order is attributed to (the rule is in the module docstring). At most three
    SELECTs (storefront, click, coupon), each stopping the search when it attributes.

    `seller_ids` (the cart's sellers) narrows the click window to the programs in the cart; pass
    it when known. Raises UnknownStorefront / UnknownCoupon for ids and codes that do not exist.

    `storefront_affiliate_id`: the storefront's affiliate, when the caller already read it (the
    checkout does, from the storefront cache). Then no SELECT is made here; the attribution comes
    back with `self_referral_pending=True` and `settle_cart` decides self-referral from the
    affiliate row it reads anyway (one statement less per storefront order).
    """
    buyer = normalize_email(buyer_email)

    if storefront_id is not None and storefront_affiliate_id is not None:
        return Attribution(
            affiliate_id=storefront_affiliate_id, source=SOURCE_STOREFRONT, storefront_id=storefront_id,
            self_referral_pending=True,
        )

    if storefront_id is not None:
        front = session.execute(
            select(Storefront.affiliate_id, Affiliate.email)
            .join(Affiliate, Affiliate.id == Storefront.affiliate_id)
            .where(Storefront.id == storefront_id)
        ).first()
        if front is None:
            raise UnknownStorefront(f"no storefront {storefront_id}")
        return Attribution(
            affiliate_id=front.affiliate_id, source=SOURCE_STOREFRONT, storefront_id=storefront_id,
            self_referral=front.email == buyer,
        )

    if attribution_token:
        click = _valid_click(session, attribution_token, at, seller_ids)
        if click is not None:
            return Attribution(
                affiliate_id=click.affiliate_id, source=SOURCE_CLICK, click_id=click.id,
                clicked_at=as_utc(click.created_at), self_referral=click.email == buyer,
            )

    if coupon_code:
        row = session.execute(
            select(Coupon.id, Coupon.affiliate_id, Affiliate.email)
            .join(Affiliate, Affiliate.id == Coupon.affiliate_id)
            .where(Coupon.code == normalize_coupon_code(coupon_code), Coupon.active.is_(True))
        ).first()
        if row is None:
            raise UnknownCoupon(f"coupon code {coupon_code!r} does not exist or is no longer active")
        return Attribution(
            affiliate_id=row.affiliate_id, source=SOURCE_COUPON, coupon_id=row.id,
            self_referral=row.email == buyer,
        )

    return Attribution(affiliate_id=None, source=SOURCE_NONE)


# The loaders' statements are built once per shape, with bind parameters: building a SELECT with
# correlated subqueries and aliases (and SQLAlchemy's cache key for it) on every checkout cost
# more CPU than running it (loadtests/README.md). The memoized statement objects are reused, and
# run on the session's connection (Core): they select columns, not entities, so the ORM's
# per-execution compile state is pure overhead. On PostgreSQL they are compiled to SQL text once
# and sent with exec_driver_sql (kernel.pgsql: ~80 us less per statement); lists are bound
# as arrays there (= ANY) so the text is constant. (Sessions here do not autoflush; callers flush.)


def _in_list(column: Any, name: str, postgres: bool) -> Any:
    """`column IN (:name...)`; on PostgreSQL `column = ANY(:name)` with the list bound as one
    array, so the statement compiles to constant text (kernel.pgsql)."""
    return column == any_(bindparam(name)) if postgres else column.in_(bindparam(name, expanding=True))


def _built(stmt: Any, postgres: bool) -> Any:
    return precompile(stmt) if postgres else stmt


def _rows(session: Session, builder: Callable[..., Any], params: dict[str, Any], *shape: bool) -> Any:
    """Run a memoized loader statement: on PostgreSQL its precompiled text (exec_driver_sql),
    elsewhere the Core statement on the session's connection."""
    if is_postgres(session):
        return builder(*shape, True).run(session, params)
    return session.connection().execute(builder(*shape, False), params)


@lru_cache(maxsize=4)
def _click_stmt(narrowed: bool, postgres: bool) -> Any:
    window_conditions = [
        ProgramMembership.affiliate_id == Click.affiliate_id,
        ProgramMembership.status == MembershipStatus.APPROVED.value,
    ]
    if narrowed:
        window_conditions.append(_in_list(Program.seller_id, "seller_ids", postgres))
    longest_window = (
        select(func.max(Program.attribution_window_days))
        .join(ProgramMembership, ProgramMembership.program_id == Program.id)
        .where(*window_conditions)
        .correlate(Click)
        .scalar_subquery()
    )
    return _built(
        select(Click.id, Click.affiliate_id, Click.created_at, Affiliate.email, Affiliate.status,
               longest_window.label("window_days"))
        .join(Affiliate, Affiliate.id == Click.affiliate_id)
        .where(Click.token == bindparam("token")),
        postgres,
    )


def _valid_click(session: Session, token: str, at: datetime, seller_ids: Collection[UUID] | None) -> Any:
    """The click for `token` if it is valid at `at` (rule 2), in one SELECT: the click, its
    affiliate, and the longest window among the programs it could earn from."""
    if len(token) > 64:
        return None
    params: dict[str, Any] = {"token": token}
    if seller_ids is not None:
        params["seller_ids"] = list(seller_ids)
    row = _rows(session, _click_stmt, params, seller_ids is not None).first()
    if row is None or row.status != AffiliateStatus.APPROVED or row.window_days is None:
        return None
    clicked_at = as_utc(row.created_at)
    if not clicked_at <= at <= clicked_at + timedelta(days=row.window_days):
        return None
    return row


# ---------------------------------------------------------------------------------------------
# Settlement: loading (few statements) then the pure computation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProgramTerms:
    """What the engine needs of one seller's program at `at`."""

    program_id: UUID
    seller_id: UUID
    attribution_window_days: int
    holding_period_days: int
    coupon_discount_bps: int
    plan_version_id: UUID | None  # None: no version in force yet
    plan: Plan | None
    affiliate_is_member: bool  # the attributed affiliate is an approved member
    # The attributed affiliate's split partners that are approved affiliates and approved
    # members of this program: only they take a part of its pool (read only when there are
    # partners).
    member_partners: frozenset[UUID] = frozenset()


@dataclass(frozen=True, slots=True)
class AffiliateTerms:
    """The attributed affiliate, as the engine needs it."""

    affiliate_id: UUID
    approved: bool
    recruiter_id: UUID | None  # an approved recruiter, else None
    splits: tuple[tuple[UUID, int], ...]  # (affiliate_id, weight); empty: keeps the whole pool
    email: str = ""  # as stored (lower case): settle_cart compares it with the buyer's


@dataclass(frozen=True, slots=True)
class CouponTerms:
    coupon_id: UUID
    seller_id: UUID
    affiliate_id: UUID


@dataclass(frozen=True, slots=True)
class MonthSales:
    """The attributed affiliate's sales with one seller this calendar month, before this order."""

    orders: int = 0
    amount: int = 0  # minor units, in the cart's currency


def attributed_sale_amounts(settlement: Settlement, lines: Sequence[CartLine]) -> dict[UUID, int]:
    """What one order adds to the attributed affiliate's month-to-date sales (the volume tiers'
    counter): {seller_id: amount the buyer pays for that seller's lines}, for every seller with a
    line that earned the affiliate (or its split partner) a commission. Empty for unattributed
    orders and self-referrals. `affiliates.service.sales.record_attributed_sale` writes these."""
    attribution = settlement.attribution
    if attribution.affiliate_id is None or attribution.self_referral or not lines:
        return {}
    return counted_sale_amounts(
        (line.seller_id, settled.amount, [c.role for c in settled.commissions])
        for line, settled in zip(lines, settlement.lines, strict=True)
    )


def counted_sale_amounts(lines: Iterable[tuple[UUID, int, Iterable[str]]]) -> dict[UUID, int]:
    """The month-to-date rule itself, over (seller id, amount the buyer pays, commission roles) per
    line: a line counts for its seller when it earned the affiliate or its split partner a
    commission. Checkout applies it to the settlement; cancelling an unpaid order to its rows."""
    amounts: dict[UUID, int] = {}
    for seller_id, amount, roles in lines:
        if any(role in (ROLE_AFFILIATE, ROLE_SPLIT_PARTNER) for role in roles):
            amounts[seller_id] = amounts.get(seller_id, 0) + amount
    return amounts


def month_key(at: datetime) -> str:
    """The calendar month (UTC) a sale counts in, as stored in affiliate_monthly_sales."""
    return f"{at.year:04d}-{at.month:02d}"


def settle_cart(
    session: Session,
    lines: Sequence[CartLine],
    attribution: Attribution,
    *,
    buyer_email: str,
    platform_fee_bps: int,
    at: datetime,
    coupon_code: str | None = None,
    is_first_order: FirstOrderCheck = every_seller_is_new,
) -> Settlement:
    """Every party's share of every line (the rule is in the module docstring).

    Statements: the affiliate with its recruiter and splits (1, only if attributed), programs +
    plan versions in force + the affiliate's and its split partners' memberships (1), month-to-date sales
    (1, only if a plan in the cart has tiers), the coupon (1, only with a code), and whatever
    `is_first_order(seller_ids, buyer_email)` costs: the caller says whose history counts (the
    default, `every_seller_is_new`, reads none; checkout passes the orders package's one-SELECT
    check).
    An attribution with `self_referral_pending` is decided here (the returned Settlement holds
    the decided one: use `settlement.attribution` from then on).
    """
    if not lines:
        return Settlement(lines=(), attribution=attribution, first_order_sellers=frozenset())
    seller_ids = frozenset(line.seller_id for line in lines)
    currency = lines[0].currency
    earning_id = attribution.affiliate_id if not attribution.self_referral else None

    affiliate = load_affiliate_terms(session, earning_id, attribution.storefront_id) if earning_id else None
    partners = [p for p, _ in affiliate.splits if p != affiliate.affiliate_id] if affiliate is not None else []
    programs = load_program_terms(session, seller_ids, earning_id, at, partner_ids=partners)
    if attribution.self_referral_pending:
        # The storefront's affiliate came from the caller (no SELECT in resolve_attribution): the
        # row just read says whether the buyer is that affiliate.
        self_referral = affiliate is not None and affiliate.email == normalize_email(buyer_email)
        attribution = replace(attribution, self_referral=self_referral, self_referral_pending=False)
        if self_referral:
            affiliate = None
    coupon = load_coupon(session, coupon_code) if coupon_code else None
    if coupon is not None and coupon.seller_id not in seller_ids:
        raise CouponNotApplicable(
            f"coupon {coupon_code!r} is for another seller's products; none of them is in this cart"
        )
    month_sales: dict[UUID, MonthSales] = {}
    if affiliate is not None and any(p.plan is not None and p.plan.tiers for p in programs.values()):
        month_sales = load_month_sales(session, affiliate.affiliate_id, seller_ids, currency, at)
    first = frozenset(is_first_order(seller_ids, buyer_email)) & seller_ids

    return compute_settlement(
        lines, attribution, programs=programs, affiliate=affiliate, coupon=coupon, month_sales=month_sales,
        first_order_sellers=first, platform_fee_bps=platform_fee_bps, at=at,
    )


def compute_settlement(
    lines: Sequence[CartLine],
    attribution: Attribution,
    *,
    programs: Mapping[UUID, ProgramTerms],
    affiliate: AffiliateTerms | None,
    coupon: CouponTerms | None,
    month_sales: Mapping[UUID, MonthSales],
    first_order_sellers: frozenset[UUID],
    platform_fee_bps: int,
    at: datetime,
) -> Settlement:
    """The pure part of `settle_cart`: no database, so the table-driven tests call it directly."""
    tiers: dict[UUID, Rate | None] = {}
    settled: list[LineSettlement] = []
    for index, line in enumerate(lines):
        program = programs.get(line.seller_id)
        gross = line.amount
        discount = 0
        if coupon is not None and program is not None and coupon.seller_id == line.seller_id:
            discount = bps_share(gross, program.coupon_discount_bps)
        amount = gross - discount
        fee = bps_share(amount, platform_fee_bps)
        reason = _no_commission_reason(attribution, affiliate, program, at)
        shares: tuple[CommissionShare, ...] = ()
        if reason is None:
            assert program is not None and program.plan is not None and program.plan_version_id is not None
            assert affiliate is not None
            if line.seller_id not in tiers:
                sales = month_sales.get(line.seller_id, MonthSales())
                tiers[line.seller_id] = program.plan.tier_rate(sales.orders, sales.amount)
            result = evaluate_line(
                program.plan, variant_id=line.variant_id, product_id=line.product_id, quantity=line.quantity,
                line_amount=amount, platform_fee=fee, tier=tiers[line.seller_id],
                first_order=line.seller_id in first_order_sellers, has_recruiter=affiliate.recruiter_id is not None,
            )
            shares = _shares(affiliate, program, result.pool, result.recruiter_override)
        settled.append(LineSettlement(
            line_index=index, gross=gross, discount=discount, amount=amount, platform_fee=fee,
            commissions=shares, seller_net=amount - fee - sum(s.amount for s in shares),
            seller_id=line.seller_id,
            program_id=program.program_id if program else None,
            plan_version_id=program.plan_version_id if program else None,
            no_commission_reason=reason,
        ))
    return Settlement(lines=tuple(settled), attribution=attribution, first_order_sellers=first_order_sellers)


def _no_commission_reason(
    attribution: Attribution, affiliate: AffiliateTerms | None, program: ProgramTerms | None, at: datetime
) -> str | None:
    if attribution.affiliate_id is None:
        return "no_attribution"
    if attribution.self_referral:
        return "self_referral"
    if program is None:
        return "no_program"
    if program.plan is None:
        return "no_plan"
    if affiliate is None or not affiliate.approved:
        return "affiliate_not_approved"
    if not program.affiliate_is_member:
        return "not_member"
    if attribution.source == SOURCE_CLICK and attribution.clicked_at is not None:
        clicked = as_utc(attribution.clicked_at)
        if not clicked <= at <= clicked + timedelta(days=program.attribution_window_days):
            return "outside_window"
    return None


def _shares(affiliate: AffiliateTerms, program: ProgramTerms, pool: int, override: int) -> tuple[CommissionShare, ...]:
    assert program.plan_version_id is not None

    def share(affiliate_id: UUID, amount: int, role: str) -> CommissionShare:
        return CommissionShare(
            affiliate_id=affiliate_id, amount=amount, role=role, program_id=program.program_id,
            plan_version_id=program.plan_version_id,  # type: ignore[arg-type]
            funded_by=FUNDED_BY_SELLER, holding_period_days=program.holding_period_days,
        )

    out: list[CommissionShare] = []
    splits = [(partner_id, weight) for partner_id, weight in affiliate.splits
              if partner_id == affiliate.affiliate_id or partner_id in program.member_partners]
    if splits and sum(weight for _, weight in splits) > 0:
        parts = allocate(pool, [weight for _, weight in splits])
        for (partner_id, _), part in zip(splits, parts, strict=True):
            role = ROLE_AFFILIATE if partner_id == affiliate.affiliate_id else ROLE_SPLIT_PARTNER
            out.append(share(partner_id, part, role))
    else:
        out.append(share(affiliate.affiliate_id, pool, ROLE_AFFILIATE))
    if affiliate.recruiter_id is not None:
        out.append(share(affiliate.recruiter_id, override, ROLE_RECRUITER))
    return tuple(s for s in out if s.amount > 0)


# ---------------------------------------------------------------------------------------------
# Loaders: one statement each
# ---------------------------------------------------------------------------------------------


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
    if with_partners:
        partner = aliased(Affiliate)
        # One list per program: array_agg on PostgreSQL, a comma-separated text elsewhere.
        collect = func.array_agg if postgres else func.group_concat
        member_partners = (
            select(collect(ProgramMembership.affiliate_id))
            .join(partner, partner.id == ProgramMembership.affiliate_id)
            .where(ProgramMembership.program_id == Program.id,
                   ProgramMembership.status == MembershipStatus.APPROVED.value,
                   partner.status == AffiliateStatus.APPROVED.value,
                   _in_list(ProgramMembership.affiliate_id, "partner_ids", postgres))
            .correlate(Program)
            .scalar_subquery()
        )
        columns.append(member_partners.label("member_partners"))
    return _built(
        select(*columns)
        .outerjoin(current, and_(current.program_id == Program.id, current.effective_from == in_force))
        .where(_in_list(Program.seller_id, "seller_ids", postgres)),
        postgres,
    )


def _id_list(value: Any) -> frozenset[UUID]:
    """An aggregated id list as the driver returns it: a list of UUIDs (PostgreSQL's array_agg),
    comma-separated hex (SQLite's group_concat), or NULL when nothing matched."""
    if not value:
        return frozenset()
    if isinstance(value, str):
        return frozenset(uuid.UUID(part) for part in value.split(","))
    return frozenset(uuid.UUID(str(part)) for part in value)


def load_program_terms(
    session: Session, seller_ids: Collection[UUID], affiliate_id: UUID | None, at: datetime,
    partner_ids: Collection[UUID] = (),
) -> dict[UUID, ProgramTerms]:
    """The programs of `seller_ids`, each with its plan version in force at `at` (the latest
    `effective_from <= at`), whether `affiliate_id` is an approved member, and which of
    `partner_ids` (its split partners) are approved affiliates and approved members: one SELECT."""
    with_member = affiliate_id is not None
    with_partners = with_member and bool(partner_ids)
    params: dict[str, Any] = {"seller_ids": list(seller_ids), "at": at}
    if with_member:
        params["affiliate_id"] = affiliate_id
    if with_partners:
        params["partner_ids"] = list(partner_ids)
    rows = _rows(session, _program_terms_stmt, params, with_member, with_partners).all()
    terms: dict[UUID, ProgramTerms] = {}
    for row in rows:
        plan = parse_plan(row.version_id, row.rules) if row.version_id is not None else None
        status = row.member_status if with_member else None
        terms[row.seller_id] = ProgramTerms(
            program_id=row.id, seller_id=row.seller_id, attribution_window_days=row.attribution_window_days,
            holding_period_days=row.holding_period_days, coupon_discount_bps=row.coupon_discount_bps,
            plan_version_id=row.version_id, plan=plan,
            affiliate_is_member=status == MembershipStatus.APPROVED.value,
            member_partners=_id_list(row.member_partners) if with_partners else frozenset(),
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
    row = _rows(session, _affiliate_terms_stmt, params, storefront_id is not None).first()
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


def load_coupon(session: Session, code: str) -> CouponTerms:
    row = session.execute(
        select(Coupon.id, Coupon.seller_id, Coupon.affiliate_id).where(
            Coupon.code == normalize_coupon_code(code), Coupon.active.is_(True)
        )
    ).first()
    if row is None:
        raise UnknownCoupon(f"coupon code {code!r} does not exist or is no longer active")
    return CouponTerms(coupon_id=row.id, seller_id=row.seller_id, affiliate_id=row.affiliate_id)


@lru_cache(maxsize=2)
def _month_sales_stmt(postgres: bool) -> Any:
    return _built(
        select(AffiliateMonthlySales.seller_id, AffiliateMonthlySales.currency,
               AffiliateMonthlySales.orders, AffiliateMonthlySales.amount)
        .where(AffiliateMonthlySales.affiliate_id == bindparam("affiliate_id"),
               AffiliateMonthlySales.month == bindparam("month"),
               _in_list(AffiliateMonthlySales.seller_id, "seller_ids", postgres)),
        postgres,
    )


def load_month_sales(
    session: Session, affiliate_id: UUID, seller_ids: Collection[UUID], currency: str, at: datetime
) -> dict[UUID, MonthSales]:
    """Month-to-date counters (before this order): orders summed over currencies, amount in the
    cart's currency. One SELECT."""
    rows = _rows(
        session, _month_sales_stmt,
        {"affiliate_id": affiliate_id, "month": month_key(at), "seller_ids": list(seller_ids)},
    ).all()
    sales: dict[UUID, MonthSales] = {}
    for row in rows:
        before = sales.get(row.seller_id, MonthSales())
        amount = row.amount if row.currency == currency else 0
        sales[row.seller_id] = MonthSales(before.orders + row.orders, before.amount + amount)
    return sales
