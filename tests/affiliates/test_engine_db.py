"""The engine's database half (`resolve_attribution`, `settle_cart`) on both backends: the worked
example from rows, the plan version in force at the order time, and the statement budget."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from affiliates.models import (
    Affiliate,
    Click,
    MembershipStatus,
    PlanVersion,
    Program,
    ProgramMembership,
    ReferralLink,
    Storefront,
)
from affiliates.service import commission
from kernel.clock import clock
from kernel.db import new_id
from tests.affiliates.factories import CatalogItem, make_product, make_seller
from tests.conftest import Backend


@pytest.fixture
def session(env: Backend) -> Iterator[Session]:
    with env.runtime.sessions() as s:
        yield s
        s.rollback()


def seller_with_program(session: Session, name: str, rules: dict[str, object], members: list[uuid.UUID],
                        window: int = 30) -> tuple[uuid.UUID, Program, PlanVersion, CatalogItem]:
    item = make_product(session, make_seller(session, name))
    program = Program(seller_id=item.seller_id, attribution_window_days=window)
    session.add(program)
    session.flush()
    version = PlanVersion(program_id=program.id, version=1, effective_from=clock.now() - timedelta(seconds=1),
                          rules=rules)
    session.add(version)
    for affiliate_id in members:
        session.add(ProgramMembership(program_id=program.id, affiliate_id=affiliate_id,
                                      status=MembershipStatus.APPROVED.value))
    session.flush()
    return item.seller_id, program, version, item


def affiliate(session: Session, name: str, **kw: object) -> Affiliate:
    row = Affiliate(name=name, email=f"{name}@example.com", status="approved", referral_code=new_id().hex[:12], **kw)
    session.add(row)
    session.flush()
    return row


def count_statements(session: Session) -> list[str]:
    seen: list[str] = []
    event.listen(session.get_bind(), "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_worked_example_from_database_rows_in_four_statements(session: Session) -> None:
    a, s = affiliate(session, "a"), affiliate(session, "s")
    storefront = Storefront(affiliate_id=a.id, slug="a-shop", name="A", currency="USD",
                            splits=[{"affiliate_id": str(a.id), "weight": 70},
                                    {"affiliate_id": str(s.id), "weight": 30}])
    session.add(storefront)
    # S shares A's commission as a member of both programs (a partner outside a program takes nothing).
    x, _, vx_version, vx = seller_with_program(session, "x", {"default": {"bps": 800}}, [a.id, s.id])
    y, _, vy_version, vy = seller_with_program(session, "y", {"default": {"flat": 100}}, [a.id, s.id])
    session.flush()
    lines = [
        commission.CartLine(vx.variant_id, vx.product_id, x, 1, 4999, "USD"),
        commission.CartLine(vy.variant_id, vy.product_id, y, 2, 1250, "USD"),
    ]
    now = clock.now()
    statements = count_statements(session)
    attribution = commission.resolve_attribution(session, storefront_id=storefront.id, attribution_token=None,
                                             coupon_code=None, buyer_email="buyer@example.com", at=now)
    result = commission.settle_cart(session, lines, attribution, buyer_email="buyer@example.com",
                                platform_fee_bps=1000, at=now, is_first_order=lambda ids, email: set(ids))
    assert len(statements) <= 3, statements  # storefront, programs, affiliate (+ the first-order check)
    assert attribution == commission.Attribution(a.id, "storefront", storefront_id=storefront.id)
    assert [(ls.platform_fee, ls.seller_net) for ls in result.lines] == [(500, 4099), (250, 2050)]
    assert [[(c.affiliate_id, c.amount, c.role) for c in ls.commissions] for ls in result.lines] == [
        [(a.id, 280, "affiliate"), (s.id, 120, "split_partner")],
        [(a.id, 140, "affiliate"), (s.id, 60, "split_partner")],
    ]
    assert {c.plan_version_id for c in result.lines[0].commissions} == {vx_version.id}
    assert {c.plan_version_id for c in result.lines[1].commissions} == {vy_version.id}
    assert result.first_order_sellers == frozenset({x, y})


def test_version_in_force_at_the_order_time_is_used(session: Session) -> None:
    a = affiliate(session, "a")
    x, program, v1, vx = seller_with_program(session, "x", {"default": {"bps": 800}}, [a.id])
    t0 = clock.now()
    v2 = PlanVersion(program_id=program.id, version=2, effective_from=t0 + timedelta(days=10),
                     rules={"default": {"bps": 1500}})
    session.add(v2)
    session.flush()
    lines = [commission.CartLine(vx.variant_id, vx.product_id, x, 1, 10_000, "USD")]
    attribution = commission.Attribution(a.id, "coupon", coupon_id=new_id())

    def settle(at: object) -> commission.LineSettlement:
        return commission.settle_cart(session, lines, attribution, buyer_email="b@example.com",
                                  platform_fee_bps=1000, at=at).lines[0]  # type: ignore[arg-type]

    before = settle(t0 + timedelta(days=10) - timedelta(microseconds=1))
    at_change = settle(t0 + timedelta(days=10))
    assert (before.commission_total, before.plan_version_id) == (800, v1.id)
    assert (at_change.commission_total, at_change.plan_version_id) == (1500, v2.id)
    assert settle(t0).commission_total == 800  # the later version never rewrites an earlier time


def test_click_attribution_window_is_inclusive_and_first_order_hook_is_used(session: Session) -> None:
    a = affiliate(session, "a")
    x, _, _, vx = seller_with_program(
        session, "x", {"default": {"bps": 800}, "first_order_bonus": {"bps": 200}}, [a.id], window=7)
    link = ReferralLink(affiliate_id=a.id, code="a-link", target_url="https://example.com",
                        destination="https://example.com")
    session.add(link)
    session.flush()
    click = Click(token="tok-1", link_id=link.id, affiliate_id=a.id, created_at=clock.now())
    session.add(click)
    session.flush()
    edge = click.created_at + timedelta(days=7)
    resolved = commission.resolve_attribution(session, storefront_id=None, attribution_token="tok-1", coupon_code=None,
                                          buyer_email="b@example.com", at=edge, seller_ids=[x])
    assert (resolved.source, resolved.click_id, resolved.affiliate_id) == ("click", click.id, a.id)
    late = commission.resolve_attribution(session, storefront_id=None, attribution_token="tok-1", coupon_code=None,
                                      buyer_email="b@example.com", at=edge + timedelta(microseconds=1))
    assert late == commission.Attribution(None, "none")
    lines = [commission.CartLine(vx.variant_id, vx.product_id, x, 1, 10_000, "USD")]
    returning = commission.settle_cart(session, lines, resolved, buyer_email="b@example.com", platform_fee_bps=1000,
                                   at=edge, is_first_order=lambda ids, email: set())
    assert returning.lines[0].commission_total == 800
    # Without a check from the caller, every buyer is new to every seller (nothing registered elsewhere).
    new = commission.settle_cart(session, lines, resolved, buyer_email="b@example.com", platform_fee_bps=1000, at=edge)
    assert new.lines[0].commission_total == 1000


def test_self_referral_is_flagged_and_earns_nothing(session: Session) -> None:
    a = affiliate(session, "a")
    storefront = Storefront(affiliate_id=a.id, slug="a-shop", name="A", currency="USD")
    session.add(storefront)
    x, _, _, vx = seller_with_program(session, "x", {"default": {"bps": 800}}, [a.id])
    now = clock.now()
    attribution = commission.resolve_attribution(session, storefront_id=storefront.id, attribution_token=None,
                                             coupon_code=None, buyer_email=" A@Example.com ", at=now)
    assert attribution.self_referral and attribution.affiliate_id == a.id
    cart = [commission.CartLine(vx.variant_id, vx.product_id, x, 1, 1000, "USD")]
    result = commission.settle_cart(session, cart, attribution, buyer_email="a@example.com", platform_fee_bps=1000,
                                    at=now)
    assert result.lines[0].commissions == () and result.lines[0].seller_net == 900
    assert result.lines[0].no_commission_reason == "self_referral"


def test_recorded_sales_move_the_next_order_into_the_tier(session: Session) -> None:
    from affiliates.service import record_attributed_sale

    a = affiliate(session, "a")
    x, _, _, vx = seller_with_program(
        session, "x", {"default": {"bps": 500}, "tiers": [{"min_orders": 2, "bps": 900}]}, [a.id])
    lines = [commission.CartLine(vx.variant_id, vx.product_id, x, 1, 10_000, "USD")]
    attribution = commission.Attribution(a.id, "coupon", coupon_id=new_id())
    now = clock.now()
    rates = []
    for _ in range(3):
        result = commission.settle_cart(session, lines, attribution, buyer_email="b@example.com",
                                    platform_fee_bps=1000, at=now)
        rates.append(result.lines[0].commission_total)
        record_attributed_sale(session, settlement=result, lines=lines, at=now)
    assert rates == [500, 500, 900]  # the tier reached BEFORE the order applies: from the 3rd order
