"""The attribution rule through the preview endpoint: storefront, else the last valid click
within the program's window, else the coupon owner; self-referral flagged and unpaid; and who may
preview what."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kernel.clock import clock
from tests.affiliates.conftest import Item, Market, Party, ok, shares


@pytest.fixture
def shop(market: Market) -> tuple[Party, Item, str]:
    """A seller with a 10 % plan, a 7-day attribution window and a 10 % coupon discount."""
    seller = market.seller()
    (item,) = market.product(seller, 10_000)
    program_id = market.program(seller, {"default": {"bps": 1000}}, attribution_window_days=7,
                                coupon_discount_bps=1000)
    return seller, item, program_id


def member(market: Market, program_id: str, name: str, **kwargs: object) -> Party:
    party = market.affiliate(name, **kwargs)
    market.join(party, program_id)
    return party


def test_click_window_edges_inclusive_end(market: Market, shop: tuple[Party, Item, str]) -> None:
    _, item, program_id = shop
    clicker = member(market, program_id, "Clicker")
    token = market.click(market.link(clicker)["code"])
    # The exact instants are pinned in test_engine_rules/test_engine_db; here: 2 s either side.
    clock.advance(timedelta(days=7) - timedelta(seconds=2))
    inside = market.preview(market.operator, [(item, 1)], attribution_token=token)
    assert inside["attribution"]["source"] == "click" and shares(inside["lines"][0]) == {
        (clicker.id, "affiliate"): 1000}
    clock.advance(timedelta(seconds=4))
    outside = market.preview(market.operator, [(item, 1)], attribution_token=token)
    assert outside["attribution"] == {"affiliate_id": None, "source": "none", "storefront_id": None,
                                      "click_id": None, "coupon_id": None, "self_referral": False}
    assert outside["lines"][0]["commissions"] == []


def test_expired_click_falls_back_to_the_coupon_owner(market: Market, shop: tuple[Party, Item, str]) -> None:
    seller, item, program_id = shop
    clicker, couponer = member(market, program_id, "Clicker"), member(market, program_id, "Couponer")
    ok(market.client.post(f"/v1/programs/{program_id}/coupons", headers=seller.headers,
                          json={"code": "save10", "affiliate_id": couponer.id}), 201)
    token = market.click(market.link(clicker)["code"])
    fresh = market.preview(market.operator, [(item, 1)], attribution_token=token, coupon_code="SAVE10")
    assert fresh["attribution"]["source"] == "click" and fresh["attribution"]["affiliate_id"] == clicker.id
    # The coupon's discount applies whoever is attributed: 10 % off, fee and commission on 9000.
    line = fresh["lines"][0]
    assert (line["discount"]["amount"], line["amount"]["amount"], line["platform_fee"]["amount"]) == (1000, 9000, 900)
    assert shares(line) == {(clicker.id, "affiliate"): 900}
    clock.advance(timedelta(days=7, seconds=1))
    late = market.preview(market.operator, [(item, 1)], attribution_token=token, coupon_code="save10")
    assert late["attribution"]["source"] == "coupon" and late["attribution"]["affiliate_id"] == couponer.id
    assert shares(late["lines"][0]) == {(couponer.id, "affiliate"): 900}
    unknown = market.preview(market.operator, [(item, 1)], coupon_code="NOPE", status=422)
    assert unknown["type"].endswith("unknown-coupon")


def test_storefront_beats_click_and_last_click_wins(market: Market, shop: tuple[Party, Item, str]) -> None:
    _, item, program_id = shop
    owner, first, last = (member(market, program_id, n) for n in ("Owner", "First", "Last"))
    slug = market.storefront(owner, item)
    market.click(market.link(first)["code"])
    last_token = market.click(market.link(last)["code"])  # the buyer's cookie now holds this one
    by_click = market.preview(market.operator, [(item, 1)], attribution_token=last_token)
    assert by_click["attribution"]["affiliate_id"] == last.id
    by_storefront = market.preview(market.operator, [(item, 1)], attribution_token=last_token, storefront_slug=slug)
    assert by_storefront["attribution"]["source"] == "storefront"
    assert shares(by_storefront["lines"][0]) == {(owner.id, "affiliate"): 1000}


def test_self_referral_is_flagged_and_earns_nothing(market: Market, shop: tuple[Party, Item, str]) -> None:
    _, item, program_id = shop
    affiliate = member(market, program_id, "Self", email="self@example.com")
    slug = market.storefront(affiliate, item)
    result = market.preview(affiliate.headers, [(item, 1)], storefront_slug=slug, buyer="SELF@example.com")
    assert result["attribution"]["self_referral"] is True and result["attribution"]["affiliate_id"] == affiliate.id
    assert result["lines"][0]["commissions"] == [] and result["lines"][0]["no_commission_reason"] == "self_referral"
    assert result["seller_net"]["amount"] == 9000


def test_recruiter_override_and_first_order_bonus_are_paid_by_the_seller(market: Market) -> None:
    seller = market.seller()
    (item,) = market.product(seller, 10_000)
    program_id = market.program(seller, {"default": {"bps": 1000}, "first_order_bonus": {"bps": 500},
                                         "recruiter_override_bps": 200})
    recruiter = market.affiliate("Recruiter")
    recruit = member(market, program_id, "Recruit", referral_code=recruiter.referral_code)
    slug = market.storefront(recruit, item)
    line = market.preview(recruit.headers, [(item, 1)], storefront_slug=slug)["lines"][0]
    # This buyer never ordered from the seller: a new customer, so the bonus applies.
    assert shares(line) == {(recruit.id, "affiliate"): 1500, (recruiter.id, "recruiter_override"): 200}
    assert line["seller_net"]["amount"] == 10_000 - 1000 - 1700


def test_preview_shows_only_what_the_caller_may_see(market: Market, shop: tuple[Party, Item, str]) -> None:
    seller, item, program_id = shop
    other_seller = market.seller("Other")
    (other_item,) = market.product(other_seller, 500)
    mine, theirs = member(market, program_id, "Mine"), member(market, program_id, "Theirs")
    their_slug = market.storefront(theirs, item)
    their_token = market.click(market.link(theirs)["code"])
    assert market.preview(mine.headers, [(item, 1)], storefront_slug=their_slug, status=404)
    assert market.preview(mine.headers, [(item, 1)], attribution_token=their_token, status=404)
    assert market.preview(seller.headers, [(other_item, 1)], status=404)
    seller_view = market.preview(seller.headers, [(item, 1)], storefront_slug=their_slug)
    assert shares(seller_view["lines"][0]) == {(theirs.id, "affiliate"): 1000}
    assert market.client.post("/v1/commissions/preview", json={}).status_code == 401
    mixed = market.preview(market.operator, [(item, 1), (other_item, 1)])
    assert [ln["no_commission_reason"] for ln in mixed["lines"]] == ["no_attribution", "no_attribution"]
    not_listed = market.preview(market.operator, [(other_item, 1)], storefront_slug=their_slug, status=422)
    assert "not listed" in not_listed["detail"]
