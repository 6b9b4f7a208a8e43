"""Affiliate applications, approval by an operator, the profile, recruiter codes and payout
onboarding (manual rail and Stripe Connect through the fake Stripe server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from tests.affiliates.conftest import Market, ok
from tests.conftest import Backend
from tests.fake_stripe import FakeStripe
from tests.fake_stripe.clients import CLIENT_TIMEOUT_SECONDS, fast_retries


def test_application_is_pending_until_an_operator_approves_it(market: Market) -> None:
    applicant = market.apply("Trade Group", email="Group@Example.com")
    me = ok(market.client.get("/v1/affiliates/me", headers=applicant.headers))
    assert (me["status"], me["email"], me["markets"]) == ("pending", "group@example.com", ["US"])
    pending = ok(market.client.get("/v1/affiliates?status=pending", headers=market.operator))
    assert [a["id"] for a in pending["items"]] == [applicant.id]
    # A pending affiliate cannot act yet.
    response = market.client.post("/v1/storefronts", headers=applicant.headers,
                                  json={"slug": "too-early", "name": "x", "currency": "USD"})
    assert response.status_code == 403 and response.json()["type"].endswith("affiliate-not-approved")
    approved = ok(market.client.post(f"/v1/affiliates/{applicant.id}/approve", headers=market.operator))
    assert approved["status"] == "approved"
    assert ok(market.client.get("/v1/affiliates?status=pending", headers=market.operator))["items"] == []


def test_operator_rejects_with_a_reason_the_applicant_sees(market: Market) -> None:
    applicant = market.apply()
    ok(market.client.post(f"/v1/affiliates/{applicant.id}/reject", headers=market.operator,
                          json={"reason": "no website content"}))
    me = ok(market.client.get("/v1/affiliates/me", headers=applicant.headers))
    assert (me["status"], me["status_reason"]) == ("rejected", "no website content")


def test_only_operators_decide_and_list_applications(market: Market) -> None:
    applicant, other = market.apply(), market.affiliate()
    seller = market.seller()
    for headers in (applicant.headers, other.headers, seller.headers):
        assert market.client.post(f"/v1/affiliates/{applicant.id}/approve", headers=headers).status_code == 403
        assert market.client.get("/v1/affiliates", headers=headers).status_code == 403
    assert market.client.post(f"/v1/affiliates/{applicant.id}/approve").status_code == 401


def test_same_email_twice_is_a_conflict(market: Market) -> None:
    market.apply(email="dup@example.com")
    response = market.client.post("/v1/affiliates", json={"name": "again", "email": "DUP@example.com"})
    assert response.status_code == 409


def test_referral_code_records_the_recruiter_and_unknown_code_is_refused(market: Market) -> None:
    recruiter = market.affiliate("Recruiter")
    recruit = market.apply("Recruit", referral_code=recruiter.referral_code.lower())
    me = ok(market.client.get("/v1/affiliates/me", headers=recruit.headers))
    assert me["recruited_by_affiliate_id"] == recruiter.id
    response = market.client.post("/v1/affiliates", json={"name": "x", "email": "x@example.com",
                                                          "referral_code": "NOPE1234"})
    assert response.status_code == 422 and response.json()["type"].endswith("unknown-referral-code")


def test_profile_update_and_default_splits_are_validated(market: Market) -> None:
    a, s = market.affiliate("A"), market.affiliate("S")
    pending = market.apply("P")
    updated = ok(market.client.patch("/v1/affiliates/me", headers=a.headers, json={
        "name": "A Group", "markets": ["US", "CA"], "splits": [{"affiliate_id": a.id, "weight": 60},
                                                             {"affiliate_id": s.id, "weight": 40}]}))
    assert updated["name"] == "A Group" and updated["markets"] == ["US", "CA"]
    assert updated["splits"] == [{"affiliate_id": a.id, "weight": 60}, {"affiliate_id": s.id, "weight": 40}]
    without_self = market.client.patch("/v1/affiliates/me", headers=a.headers,
                                       json={"splits": [{"affiliate_id": s.id, "weight": 1}]})
    assert without_self.status_code == 422 and "yourself" in without_self.json()["detail"]
    unapproved = market.client.patch("/v1/affiliates/me", headers=a.headers, json={"splits": [
        {"affiliate_id": a.id, "weight": 1}, {"affiliate_id": pending.id, "weight": 1}]})
    assert unapproved.status_code == 422
    cleared = ok(market.client.patch("/v1/affiliates/me", headers=a.headers, json={"splits": None}))
    assert cleared["splits"] is None


def test_manual_payout_onboarding_needs_an_operator_verification(market: Market) -> None:
    affiliate = market.affiliate()
    assert market.client.post(f"/v1/affiliates/{affiliate.id}/payout-account/verify",
                              headers=market.operator).status_code == 409
    sent = ok(market.client.post("/v1/affiliates/me/payout-account", headers=affiliate.headers,
                                 json={"bank_reference": "DE89 3704 0044 0532 0130 00"}))
    assert (sent["rail"], sent["payout_status"]) == ("manual", "onboarding")
    ok(market.client.post(f"/v1/affiliates/{affiliate.id}/payout-account/verify", headers=market.operator))
    assert ok(market.client.get("/v1/affiliates/me/payout-account",
                                headers=affiliate.headers))["payout_status"] == "payouts_enabled"
    # A changed bank reference needs a new verification.
    ok(market.client.post("/v1/affiliates/me/payout-account", headers=affiliate.headers,
                          json={"bank_reference": "other account"}))
    assert ok(market.client.get("/v1/affiliates/me/payout-account",
                                headers=affiliate.headers))["payout_status"] == "onboarding"


def test_pending_affiliate_cannot_start_payout_onboarding(market: Market) -> None:
    applicant = market.apply()
    response = market.client.post("/v1/affiliates/me/payout-account", headers=applicant.headers,
                                  json={"bank_reference": "x"})
    assert response.status_code == 403


@pytest.fixture
def stripe_platform(env: Backend, fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    settings = env.runtime.settings.model_copy(update={
        "stripe_api_key": SecretStr(fake_stripe.api_key), "stripe_api_base": fake_stripe.url,
        "stripe_webhook_secret": SecretStr("whsec_aff"), "stripe_timeout_seconds": CLIENT_TIMEOUT_SECONDS,
    })
    fast_retries(monkeypatch)
    monkeypatch.setattr(env.runtime, "settings", settings)
    env.runtime.__dict__.pop("rail", None)
    yield fake_stripe
    env.runtime.__dict__.pop("rail", None)


def test_stripe_onboarding_creates_one_connected_account_and_fresh_links(
    market: Market, stripe_platform: FakeStripe
) -> None:
    affiliate = market.affiliate()
    first = ok(market.client.post("/v1/affiliates/me/payout-account", headers=affiliate.headers, json={}))
    second = ok(market.client.post("/v1/affiliates/me/payout-account", headers=affiliate.headers))
    assert first["rail"] == "stripe" and first["payout_status"] == "onboarding"
    assert first["stripe_account_id"].startswith("acct_") and first["stripe_account_id"] == second["stripe_account_id"]
    assert first["onboarding_url"] and second["onboarding_url"]
    accounts = [r for r in stripe_platform.requests if r.method == "POST" and r.path == "/v1/accounts"]
    assert len(accounts) == 1
    refused = market.client.post("/v1/affiliates/me/payout-account", headers=affiliate.headers,
                                 json={"bank_reference": "x"})
    assert refused.status_code == 422
