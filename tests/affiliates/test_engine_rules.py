"""The commission engine's written rules, table-driven, on the pure part of the engine
(`compute_settlement`): no database, so every row is one rule and runs in microseconds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from affiliates.service.commission import (
    AffiliateTerms,
    Attribution,
    CartLine,
    CouponTerms,
    MonthSales,
    ProgramTerms,
    Settlement,
    compute_settlement,
)
from affiliates.service.commission.plans import Plan
from affiliates.service.commission.terms import Quota as QuotaTerms

AT = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
A, S, R = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()  # affiliate, split partner, recruiter
X, Y = uuid.uuid4(), uuid.uuid4()  # sellers
PX, PY = uuid.uuid4(), uuid.uuid4()  # products
VX, VX2, VY = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()  # variants
PROG_X, PROG_Y, VERSION_X, VERSION_Y = (uuid.uuid4() for _ in range(4))


def program(seller: uuid.UUID, rules: dict[str, Any] | None, *, member: bool = True, window: int = 30,
            coupon_bps: int = 0, partners: frozenset[uuid.UUID] = frozenset({S, R}),
            quota: QuotaTerms | None = None) -> ProgramTerms:
    """`partners`: the split partners that are approved members of this program; `quota`: the
    affiliate's quota in it this month."""
    program_id, version_id = (PROG_X, VERSION_X) if seller == X else (PROG_Y, VERSION_Y)
    return ProgramTerms(
        program_id=program_id, seller_id=seller, attribution_window_days=window, holding_period_days=30,
        coupon_discount_bps=coupon_bps, plan_version_id=version_id if rules is not None else None,
        plan=Plan.parse(rules) if rules is not None else None, affiliate_is_member=member,
        member_partners=partners, quota=quota,
    )


def line(seller: uuid.UUID, unit: int, qty: int = 1, *, product: uuid.UUID | None = None,
         variant: uuid.UUID | None = None) -> CartLine:
    return CartLine(variant_id=variant or (VX if seller == X else VY),
                    product_id=product or (PX if seller == X else PY),
                    seller_id=seller, quantity=qty, unit_amount=unit, currency="USD")


STOREFRONT_A = Attribution(affiliate_id=A, source="storefront", storefront_id=uuid.uuid4())


@dataclass
class Case:
    name: str
    lines: list[CartLine]
    programs: dict[uuid.UUID, ProgramTerms]
    expect_fee: list[int]
    expect_shares: list[dict[tuple[uuid.UUID, str], int]]  # per line: (affiliate, role) -> amount
    expect_net: list[int]
    attribution: Attribution = STOREFRONT_A
    affiliate: AffiliateTerms | None = field(default_factory=lambda: AffiliateTerms(A, True, None, ()))
    month: dict[uuid.UUID, MonthSales] = field(default_factory=dict)
    first: frozenset[uuid.UUID] = frozenset()
    coupon: CouponTerms | None = None
    fee_bps: int = 1000
    expect_discount: list[int] | None = None
    at: datetime = AT


WORKED = Case(
    "design worked example: X 800 bps, Y flat 100/unit, A/S 70/30",
    [line(X, 4999), line(Y, 1250, 2)],
    {X: program(X, {"default": {"bps": 800}}), Y: program(Y, {"default": {"flat": 100}})},
    expect_fee=[500, 250],
    expect_shares=[{(A, "affiliate"): 280, (S, "split_partner"): 120},
                   {(A, "affiliate"): 140, (S, "split_partner"): 60}],
    expect_net=[4099, 2050],
    affiliate=AffiliateTerms(A, True, None, ((A, 70), (S, 30))),
)

PLAN = {
    "default": {"bps": 500},
    "products": [{"product_id": str(PX), "bps": 700}],
    "variants": [{"variant_id": str(VX2), "flat": 300}],
    "tiers": [{"min_orders": 10, "bps": 900}, {"min_amount": 100_000, "bps": 1200}, {"min_orders": 5, "bps": 1200}],
    "first_order_bonus": {"bps": 200},
    "recruiter_override_bps": 100,
}

CASES = [
    WORKED,
    Case("default bps, round half even down (0.5 -> 0)", [line(Y, 1, 50)],
         {Y: program(Y, {"default": {"bps": 100}})}, [5], [{(A, "affiliate"): 0}], [45]),
    Case("default bps, round half even up (1.5 -> 2)", [line(Y, 150)],
         {Y: program(Y, {"default": {"bps": 100}})}, [15], [{(A, "affiliate"): 2}], [133]),
    Case("flat per unit", [line(Y, 1000, 3)], {Y: program(Y, {"default": {"flat": 75}})},
         [300], [{(A, "affiliate"): 225}], [2475]),
    Case("product override beats default", [line(X, 10_000)], {X: program(X, PLAN)},
         [1000], [{(A, "affiliate"): 700}], [8300]),
    Case("variant override beats product override", [line(X, 10_000, variant=VX2)], {X: program(X, PLAN)},
         [1000], [{(A, "affiliate"): 300}], [8700]),
    Case("default rule on a product without override", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, PLAN)}, [1000], [{(A, "affiliate"): 500}], [8500]),
    Case("tier not reached at 9 orders before this one", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "tiers": [{"min_orders": 10, "bps": 900}]})},
         [1000], [{(A, "affiliate"): 500}], [8500], month={X: MonthSales(9, 0)}),
    Case("tier reached at exactly 10 orders before (boundary inclusive)", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "tiers": [{"min_orders": 10, "bps": 900}]})},
         [1000], [{(A, "affiliate"): 900}], [8100], month={X: MonthSales(10, 0)}),
    Case("amount tier one minor unit short", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "tiers": [{"min_amount": 100_000, "bps": 1200}]})},
         [1000], [{(A, "affiliate"): 500}], [8500], month={X: MonthSales(3, 99_999)}),
    Case("amount tier reached exactly", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "tiers": [{"min_amount": 100_000, "bps": 1200}]})},
         [1000], [{(A, "affiliate"): 1200}], [7800], month={X: MonthSales(3, 100_000)}),
    Case("several tiers reached: highest bps wins", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "tiers": PLAN["tiers"]})},
         [1000], [{(A, "affiliate"): 1200}], [7800], month={X: MonthSales(12, 0)}),
    Case("tier with two thresholds needs both", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "tiers": [{"min_orders": 2, "min_amount": 5000, "bps": 900}]})},
         [1000], [{(A, "affiliate"): 500}], [8500], month={X: MonthSales(5, 4999)}),
    Case("tiers do not replace a product override", [line(X, 10_000)],
         {X: program(X, {"default": {"bps": 500}, "products": [{"product_id": str(PX), "bps": 600}],
                         "tiers": [{"min_orders": 1, "bps": 900}]})},
         [1000], [{(A, "affiliate"): 600}], [8400], month={X: MonthSales(50, 0)}),
    Case("first-order bonus bps added", [line(Y, 10_000)],
         {Y: program(Y, {"default": {"bps": 500}, "first_order_bonus": {"bps": 200}})},
         [1000], [{(A, "affiliate"): 700}], [8300], first=frozenset({Y})),
    Case("first-order bonus flat per unit added", [line(Y, 10_000, 2)],
         {Y: program(Y, {"default": {"bps": 500}, "first_order_bonus": {"flat": 150}})},
         [2000], [{(A, "affiliate"): 1300}], [16700], first=frozenset({Y})),
    Case("no first-order bonus for a returning buyer", [line(Y, 10_000)],
         {Y: program(Y, {"default": {"bps": 500}, "first_order_bonus": {"bps": 200}})},
         [1000], [{(A, "affiliate"): 500}], [8500]),
    Case("quota bonus paid once month-to-date orders before this one meet the quota",
         [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "quota_bonus": {"bps": 300}}, quota=QuotaTerms(orders=10))},
         [1000], [{(A, "affiliate"): 800}], [8200], month={X: MonthSales(10, 0)}),
    Case("no quota bonus one order short of the quota", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "quota_bonus": {"bps": 300}}, quota=QuotaTerms(orders=10))},
         [1000], [{(A, "affiliate"): 500}], [8500], month={X: MonthSales(9, 0)}),
    Case("quota with orders and revenue targets needs both", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "quota_bonus": {"flat": 50}},
                     quota=QuotaTerms(orders=2, amount=50_000))},
         [1000], [{(A, "affiliate"): 500}], [8500], month={X: MonthSales(5, 49_999)}),
    Case("no quota for the month: no quota bonus", [line(X, 10_000, product=uuid.uuid4())],
         {X: program(X, {"default": {"bps": 500}, "quota_bonus": {"bps": 300}})},
         [1000], [{(A, "affiliate"): 500}], [8500], month={X: MonthSales(99, 10**7)}),
    Case("split with remainder: ties go to the partner listed first", [line(Y, 1001)],
         {Y: program(Y, {"default": {"flat": 1}})}, [100],
         [{(S, "split_partner"): 1}], [900],
         affiliate=AffiliateTerms(A, True, None, ((S, 1), (A, 1)))),
    Case("split three ways 1/1/1 of 100: 34/33/33", [line(Y, 1000)],
         {Y: program(Y, {"default": {"bps": 1000}})}, [100],
         [{(A, "affiliate"): 34, (S, "split_partner"): 33, (R, "split_partner"): 33}], [800],
         affiliate=AffiliateTerms(A, True, None, ((A, 1), (S, 1), (R, 1)))),
    Case("a split partner that is not a member of the line's program takes nothing: the rest split the pool",
         [line(X, 1000)], {X: program(X, {"default": {"bps": 1000}}, partners=frozenset({R}))}, [100],
         [{(A, "affiliate"): 50, (R, "split_partner"): 50}], [800],
         affiliate=AffiliateTerms(A, True, None, ((A, 1), (S, 1), (R, 1)))),
    Case("the only split partner is not a member: the affiliate keeps the whole pool", [line(X, 4999)],
         {X: program(X, {"default": {"bps": 800}}, partners=frozenset())}, [500],
         [{(A, "affiliate"): 400}], [4099], affiliate=AffiliateTerms(A, True, None, ((A, 70), (S, 30)))),
    Case("membership is per line's program: S in Y's program only splits Y's line alone",
         [line(X, 4999), line(Y, 1250, 2)],
         {X: program(X, {"default": {"bps": 800}}, partners=frozenset()),
          Y: program(Y, {"default": {"flat": 100}})},
         expect_fee=[500, 250], expect_shares=[{(A, "affiliate"): 400},
                                               {(A, "affiliate"): 140, (S, "split_partner"): 60}],
         expect_net=[4099, 2050], affiliate=AffiliateTerms(A, True, None, ((A, 70), (S, 30)))),
    Case("recruiter override on top, funded by the seller", [line(Y, 10_000)],
         {Y: program(Y, {"default": {"bps": 500}, "recruiter_override_bps": 100})},
         [1000], [{(A, "affiliate"): 500, (R, "recruiter_override"): 100}], [8400],
         affiliate=AffiliateTerms(A, True, R, ())),
    Case("no recruiter: no override", [line(Y, 10_000)],
         {Y: program(Y, {"default": {"bps": 500}, "recruiter_override_bps": 100})},
         [1000], [{(A, "affiliate"): 500}], [8500]),
    Case("commission capped so the seller's net is never negative", [line(Y, 100, 2)],
         {Y: program(Y, {"default": {"flat": 100}, "recruiter_override_bps": 500})},
         [20], [{(A, "affiliate"): 180}], [0], affiliate=AffiliateTerms(A, True, R, ())),
    Case("seller without a program: fee and net only", [line(X, 4999)], {},
         [500], [{}], [4499]),
    Case("program without a plan version in force: nothing", [line(X, 4999)], {X: program(X, None)},
         [500], [{}], [4499]),
    Case("affiliate not a member of that seller's program: nothing on its lines", [line(X, 4999), line(Y, 1250, 2)],
         {X: program(X, {"default": {"bps": 800}}, member=False), Y: program(Y, {"default": {"flat": 100}})},
         [500, 250], [{}, {(A, "affiliate"): 200}], [4499, 2050]),
    Case("affiliate no longer approved: nothing", [line(Y, 1000)], {Y: program(Y, {"default": {"bps": 800}})},
         [100], [{}], [900], affiliate=AffiliateTerms(A, False, None, ())),
    Case("self-referral earns nothing", [line(Y, 1000)], {Y: program(Y, {"default": {"bps": 800}})},
         [100], [{}], [900], attribution=replace(STOREFRONT_A, self_referral=True), affiliate=None),
    Case("no attribution: fee and net only", [line(Y, 1000)], {Y: program(Y, {"default": {"bps": 800}})},
         [100], [{}], [900], attribution=Attribution(None, "none"), affiliate=None),
    Case("click at the window's last instant earns", [line(Y, 1000)],
         {Y: program(Y, {"default": {"bps": 800}}, window=7)},
         [100], [{(A, "affiliate"): 80}], [820],
         attribution=Attribution(A, "click", click_id=uuid.uuid4(), clicked_at=AT - timedelta(days=7))),
    Case("click one second past the window earns nothing", [line(Y, 1000)],
         {Y: program(Y, {"default": {"bps": 800}}, window=7)}, [100], [{}], [900],
         attribution=Attribution(A, "click", click_id=uuid.uuid4(), clicked_at=AT - timedelta(days=7, seconds=1))),
    Case("coupon discount on the coupon seller's lines only; fee and shares on the discounted amount",
         [line(X, 4999), line(Y, 1250, 2)],
         {X: program(X, {"default": {"bps": 800}}), Y: program(Y, {"default": {"flat": 100}}, coupon_bps=1000)},
         [500, 225], [{(A, "affiliate"): 400}, {(A, "affiliate"): 200}], [4099, 1825],
         attribution=Attribution(A, "coupon", coupon_id=uuid.uuid4()),
         coupon=CouponTerms(uuid.uuid4(), Y, A), expect_discount=[0, 250]),
    Case("platform fee 0 bps", [line(Y, 999)], {Y: program(Y, {"default": {"bps": 800}})},
         [0], [{(A, "affiliate"): 80}], [919], fee_bps=0),
]


def settle(case: Case) -> Settlement:
    return compute_settlement(
        case.lines, case.attribution, programs=case.programs, affiliate=case.affiliate, coupon=case.coupon,
        month_sales=case.month, first_order_sellers=case.first, platform_fee_bps=case.fee_bps, at=case.at,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_rule(case: Case) -> None:
    result = settle(case)
    assert [s.platform_fee for s in result.lines] == case.expect_fee
    shares = [{(c.affiliate_id, c.role): c.amount for c in s.commissions} for s in result.lines]
    expected = [{k: v for k, v in d.items() if v > 0} for d in case.expect_shares]
    assert shares == expected
    assert [s.seller_net for s in result.lines] == case.expect_net
    if case.expect_discount is not None:
        assert [s.discount for s in result.lines] == case.expect_discount
    for s in result.lines:
        assert s.platform_fee + s.commission_total + s.seller_net == s.amount == s.gross - s.discount


def test_worked_example_order_totals_and_plan_versions_recorded() -> None:
    result = settle(WORKED)
    assert sum(s.amount for s in result.lines) == 7499
    assert sum(s.platform_fee for s in result.lines) == 750
    assert sum(s.commission_total for s in result.lines) == 600
    assert sum(s.seller_net for s in result.lines) == 6149
    by_affiliate: dict[uuid.UUID, int] = {}
    for s in result.lines:
        for c in s.commissions:
            by_affiliate[c.affiliate_id] = by_affiliate.get(c.affiliate_id, 0) + c.amount
            assert c.funded_by == "seller"
            assert c.plan_version_id == (VERSION_X if s.seller_id == X else VERSION_Y)
    assert by_affiliate == {A: 420, S: 180}


def test_commission_reason_explains_lines_that_earn_nothing() -> None:
    case = CASES[[c.name for c in CASES].index("affiliate not a member of that seller's program: nothing on its lines")]
    result = settle(case)
    assert [s.no_commission_reason for s in result.lines] == ["not_member", None]


# --- property: for random carts and plans, nothing is lost and nothing is negative ------------

rate = st.one_of(st.fixed_dictionaries({"bps": st.integers(0, 10_000)}),
                 st.fixed_dictionaries({"flat": st.integers(0, 50_000)}))
plans = st.fixed_dictionaries({
    "default": rate,
    "products": st.lists(st.fixed_dictionaries({"product_id": st.just(str(PX)), "bps": st.integers(0, 10_000)}),
                         max_size=1),
    "variants": st.lists(st.fixed_dictionaries({"variant_id": st.just(str(VX2)), "flat": st.integers(0, 9_999)}),
                         max_size=1),
    "tiers": st.lists(st.fixed_dictionaries({"min_orders": st.integers(0, 20), "bps": st.integers(0, 10_000)}),
                      max_size=3),
    "first_order_bonus": st.one_of(st.none(), rate),
    "recruiter_override_bps": st.integers(0, 10_000),
})
cart_lines = st.lists(
    st.builds(
        lambda seller, unit, qty, variant: line(seller, unit, qty, variant=variant),
        st.sampled_from([X, Y]), st.integers(1, 10**7), st.integers(1, 1000), st.sampled_from([VX, VX2]),
    ),
    min_size=1, max_size=8,
)
weights = st.lists(st.integers(0, 100), min_size=1, max_size=4).filter(lambda w: sum(w) > 0)


@settings(max_examples=300, deadline=None)
@given(cart_lines, plans, plans, weights, st.booleans(), st.integers(0, 10_000), st.integers(0, 10_000),
       st.integers(0, 30), st.booleans(), st.integers(0, 15), st.integers(0, 15))
def test_nothing_is_lost_and_no_share_is_negative(
    lines: list[CartLine], plan_x: dict[str, Any], plan_y: dict[str, Any], split_weights: list[int],
    has_recruiter: bool, fee_bps: int, coupon_bps: int, orders_before: int, first: bool,
    members_x: int, members_y: int,
) -> None:
    partners = [A, S, uuid.uuid4(), uuid.uuid4()][: len(split_weights)]

    def members(mask: int) -> frozenset[uuid.UUID]:  # which partners are members of a program
        return frozenset(p for bit, p in enumerate(partners) if mask >> bit & 1)

    case = Case(
        "property", lines,
        {X: program(X, plan_x, partners=members(members_x)),
         Y: program(Y, plan_y, coupon_bps=coupon_bps, partners=members(members_y))},
        [], [], [],
        affiliate=AffiliateTerms(A, True, R if has_recruiter else None,
                                 tuple(zip(partners, split_weights, strict=True))),
        month={X: MonthSales(orders_before, 0), Y: MonthSales(orders_before, 0)},
        first=frozenset({X, Y}) if first else frozenset(), fee_bps=fee_bps,
        coupon=CouponTerms(uuid.uuid4(), Y, A), attribution=Attribution(A, "coupon", coupon_id=uuid.uuid4()),
    )
    result = settle(case)
    assert len(result.lines) == len(lines)
    for cart_line, s in zip(lines, result.lines, strict=True):
        assert s.gross == cart_line.amount
        assert s.amount == s.gross - s.discount
        assert s.platform_fee + s.commission_total + s.seller_net == s.amount
        assert min(s.discount, s.amount, s.platform_fee, s.seller_net) >= 0
        assert all(c.amount > 0 for c in s.commissions)
        line_members = members(members_x if cart_line.seller_id == X else members_y)
        assert all(c.affiliate_id in line_members for c in s.commissions if c.role == "split_partner")
