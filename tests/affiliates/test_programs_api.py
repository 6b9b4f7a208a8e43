"""Seller programs, membership approval flows and permissions, and versioned commission plans."""

from __future__ import annotations

from datetime import timedelta

from kernel.clock import clock
from tests.affiliates.conftest import Market, ok, shares


def test_membership_needs_the_sellers_approval_when_the_program_says_so(market: Market) -> None:
    seller = market.seller()
    (item,) = market.product(seller, 1000)
    program = ok(market.client.post("/v1/programs", headers=seller.headers, json={
        "terms": "10% on everything", "requires_approval": True, "attribution_window_days": 14,
        "holding_period_days": 21, "coupon_discount_bps": 500}), 201)
    market.plan(seller, program["id"], {"default": {"bps": 1000}})
    affiliate = market.affiliate()
    membership = market.join(affiliate, program["id"])
    assert membership["status"] == "pending"
    slug = market.storefront(affiliate)
    refused = market.client.post(f"/v1/storefronts/{slug}/listings", headers=affiliate.headers,
                                 json={"product_id": item.product_id})
    assert refused.status_code == 409 and refused.json()["type"].endswith("not-program-member")
    listed = ok(market.client.get(f"/v1/programs/{program['id']}/memberships?status=pending", headers=seller.headers))
    assert [(m["affiliate_id"], m["status"]) for m in listed["items"]] == [(affiliate.id, "pending")]
    approved = ok(market.client.post(
        f"/v1/programs/{program['id']}/memberships/{membership['id']}/approve", headers=seller.headers, json={}))
    assert approved["status"] == "approved"
    ok(market.client.post(f"/v1/storefronts/{slug}/listings", headers=affiliate.headers,
                          json={"product_id": item.product_id}), 201)
    mine = ok(market.client.get("/v1/affiliates/me/memberships", headers=affiliate.headers))
    assert [m["status"] for m in mine["items"]] == ["approved"]


def test_joining_without_approval_is_immediate_and_twice_is_a_conflict(market: Market) -> None:
    seller = market.seller()
    program_id = market.program(seller, {"default": {"bps": 500}})
    affiliate = market.affiliate()
    assert market.join(affiliate, program_id)["status"] == "approved"
    again = market.client.post(f"/v1/programs/{program_id}/memberships", headers=affiliate.headers, json={})
    assert again.status_code == 409


def test_rejected_member_may_apply_again_and_reject_needs_a_pending_membership(market: Market) -> None:
    seller = market.seller()
    program_id = market.program(seller, {"default": {"bps": 500}}, requires_approval=True)
    affiliate = market.affiliate()
    membership = market.join(affiliate, program_id)
    base = f"/v1/programs/{program_id}/memberships/{membership['id']}"
    rejected = ok(market.client.post(f"{base}/reject", headers=seller.headers, json={"reason": "not a fit"}))
    assert (rejected["status"], rejected["reason"]) == ("rejected", "not a fit")
    assert market.client.post(f"{base}/remove", headers=seller.headers).status_code == 409
    assert market.join(affiliate, program_id)["status"] == "pending"


def test_removed_member_loses_listings_and_commission(market: Market) -> None:
    seller = market.seller()
    (item,) = market.product(seller, 1000)
    program_id = market.program(seller, {"default": {"bps": 1000}})
    affiliate = market.affiliate()
    membership = market.join(affiliate, program_id)
    slug = market.storefront(affiliate, item)
    assert ok(market.client.get(f"/v1/storefronts/{slug}"))["product_count"] == 1
    ok(market.client.post(f"/v1/programs/{program_id}/memberships/{membership['id']}/remove", headers=seller.headers))
    assert ok(market.client.get(f"/v1/storefronts/{slug}"))["product_count"] == 0  # cache invalidated
    token = market.click(market.link(affiliate)["code"])
    result = market.preview(affiliate.headers, [(item, 1)], attribution_token=token)
    assert result["lines"][0]["commissions"] == [] and result["attribution"]["source"] == "none"


def test_sellers_and_affiliates_cannot_manage_someone_elses_program(market: Market) -> None:
    owner, other = market.seller("Owner"), market.seller("Other")
    program_id = market.program(owner, {"default": {"bps": 500}}, requires_approval=True)
    affiliate = market.affiliate()
    membership = market.join(affiliate, program_id)
    base = f"/v1/programs/{program_id}"
    assert market.client.get(f"{base}/memberships", headers=other.headers).status_code == 404
    assert market.client.post(f"{base}/memberships/{membership['id']}/approve",
                              headers=other.headers).status_code == 404
    assert market.client.patch(base, headers=other.headers, json={"terms": "mine"}).status_code == 404
    assert market.client.post(f"{base}/plan-versions", headers=other.headers,
                              json={"rules": {"default": {"bps": 1}}}).status_code == 404
    assert market.client.post(f"{base}/memberships/{membership['id']}/approve",
                              headers=affiliate.headers).status_code == 403
    assert market.client.get(f"{base}/plan-versions", headers=other.headers).status_code == 404
    # A pending member does not see the plan yet; the operator does.
    assert market.client.get(f"{base}/plan-versions", headers=affiliate.headers).status_code == 404
    assert len(ok(market.client.get(f"{base}/plan-versions", headers=market.operator))["items"]) == 1
    assert market.client.post("/v1/programs", headers=owner.headers, json={}).status_code == 409


def test_program_terms_update_and_listing(market: Market) -> None:
    seller = market.seller()
    program_id = market.program(seller)
    updated = ok(market.client.patch(f"/v1/programs/{program_id}", headers=seller.headers,
                                     json={"attribution_window_days": 7, "terms": "new terms"}))
    assert (updated["attribution_window_days"], updated["terms"], updated["current_plan_version_id"]) == (
        7, "new terms", None)
    assert market.client.patch(f"/v1/programs/{program_id}", headers=seller.headers,
                               json={"terms": None}).status_code == 422
    found = ok(market.client.get(f"/v1/programs?seller_id={seller.id}", headers=market.affiliate().headers))
    assert [p["id"] for p in found["items"]] == [program_id]


def test_a_program_names_its_seller_in_the_list_and_alone(market: Market) -> None:
    seller = market.seller("Harbour Tools")
    program_id = market.program(seller)
    affiliate = market.affiliate()
    found = ok(market.client.get(f"/v1/programs?seller_id={seller.id}", headers=affiliate.headers))
    assert [p["seller_name"] for p in found["items"]] == ["Harbour Tools"]
    alone = ok(market.client.get(f"/v1/programs/{program_id}", headers=affiliate.headers))
    assert alone["seller_name"] == "Harbour Tools"


def test_plan_version_in_force_at_the_order_time_computes_and_is_recorded(market: Market) -> None:
    seller = market.seller()
    (item,) = market.product(seller, 10_000)
    program_id = market.program(seller)
    v1 = market.plan(seller, program_id, {"default": {"bps": 800}})
    v2 = market.plan(seller, program_id, {"default": {"bps": 1500}},
                     effective_from=(clock.now() + timedelta(days=10)).isoformat())
    affiliate = market.affiliate()
    market.join(affiliate, program_id)
    slug = market.storefront(affiliate, item)

    before = market.preview(affiliate.headers, [(item, 1)], storefront_slug=slug)["lines"][0]
    assert shares(before) == {(affiliate.id, "affiliate"): 800}
    assert before["plan_version_id"] == v1["id"] and before["commissions"][0]["plan_version_id"] == v1["id"]
    clock.advance(timedelta(days=10, seconds=1))
    after = market.preview(affiliate.headers, [(item, 1)], storefront_slug=slug)["lines"][0]
    assert shares(after) == {(affiliate.id, "affiliate"): 1500} and after["plan_version_id"] == v2["id"]
    versions = ok(market.client.get(f"/v1/programs/{program_id}/plan-versions", headers=affiliate.headers))
    assert [(v["version"], v["rules"]["default"]) for v in versions["items"]] == [(1, {"bps": 800}),
                                                                                  (2, {"bps": 1500})]


def test_plan_versions_are_never_back_dated_and_rules_are_validated(market: Market) -> None:
    seller = market.seller()
    program_id = market.program(seller)
    url = f"/v1/programs/{program_id}/plan-versions"
    past = market.client.post(url, headers=seller.headers, json={
        "rules": {"default": {"bps": 800}}, "effective_from": (clock.now() - timedelta(days=1)).isoformat()})
    assert past.status_code == 422 and past.json()["type"].endswith("invalid-plan")
    for bad in ({"default": {"bps": 800, "flat": 1}}, {"default": {"bps": 10_001}},
                {"default": {"bps": 1}, "tiers": [{"bps": 5}]},
                {"default": {"bps": 1}, "products": [{"product_id": seller.id, "bps": 1},
                                                     {"product_id": seller.id, "bps": 2}]}):
        assert market.client.post(url, headers=seller.headers, json={"rules": bad}).status_code == 422, bad
    when = (clock.now() + timedelta(days=3)).isoformat()
    market.plan(seller, program_id, {"default": {"bps": 1}}, effective_from=when)
    clash = market.client.post(url, headers=seller.headers, json={"rules": {"default": {"bps": 2}},
                                                                  "effective_from": when})
    assert clash.status_code == 409
