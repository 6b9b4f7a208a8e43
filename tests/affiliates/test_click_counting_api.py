"""Referral clicks count unique human visitors: one click per visitor per link per window (the
visitor cookie, or a keyed hash of address and user agent), known bots and prefetches are raw
hits only, and a repeat visit writes no row yet stays attributable with its click's token."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from affiliates.tasks import flush_clicks
from tests.affiliates.conftest import Market, Party, ok
from tests.conftest import Backend

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def daily(market: Market, affiliate: Party, link: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(clicks, hits, bot_hits) per day of the link, after the beat task's flush."""
    flush_clicks()
    rows = ok(market.client.get(f"/v1/referral-links/{link['id']}/clicks/daily", headers=affiliate.headers))
    return [(row["clicks"], row["hits"], row["bot_hits"]) for row in rows]


def click_rows(market: Market, affiliate: Party) -> int:
    return len(ok(market.client.get("/v1/affiliates/me/clicks", headers=affiliate.headers))["items"])


def visit(market: Market, code: str, **headers: str) -> Any:
    response = market.client.get(f"/r/{code}", follow_redirects=False, headers=headers)
    assert response.status_code == 302, response.text
    token = parse_qs(urlsplit(response.headers["location"]).query).get("mk_ref")
    return response, token[0] if token else None


@pytest.fixture
def shop(market: Market) -> tuple[Any, str, Party]:
    seller = market.seller()
    (item,) = market.product(seller, 10_000)
    program_id = market.program(seller, {"default": {"bps": 1000}})
    affiliate = market.affiliate("Clicker")
    market.join(affiliate, program_id)
    return item, program_id, affiliate


def test_a_visitor_who_comes_back_is_one_click_and_stays_attributable(
    market: Market, shop: tuple[Any, str, Party]
) -> None:
    item, program_id, affiliate = shop
    link = market.link(affiliate)
    first = market.click(link["code"], visitor="ada")
    again = [market.click(link["code"], visitor="ada") for _ in range(3)]
    assert again == [first] * 3  # the same click's token, the cookie set again
    assert click_rows(market, affiliate) == 1
    assert daily(market, affiliate, link) == [(1, 4, 0)]
    # Last click wins: a visit to another affiliate's link, then back to ours, brings our token back.
    rival = market.affiliate("Rival")
    market.join(rival, program_id)
    rival_token = market.click(market.link(rival)["code"], visitor="ada")
    assert market.client.cookies.get("mk_ref") == rival_token
    assert market.click(link["code"], visitor="ada") == first
    assert market.client.cookies.get("mk_ref") == first
    preview = market.preview(market.operator, [(item, 1)], attribution_token=first)
    assert (preview["attribution"]["source"], preview["attribution"]["affiliate_id"]) == ("click", affiliate.id)


def test_dropping_cookies_or_changing_address_does_not_make_a_new_visitor(
    market: Market, shop: tuple[Any, str, Party]
) -> None:
    _, _, affiliate = shop
    link = market.link(affiliate)
    _, token = visit(market, link["code"], **{"User-Agent": BROWSER})
    market.client.cookies.clear()  # same address and user agent: the hash knows it
    assert visit(market, link["code"], **{"User-Agent": BROWSER})[1] == token
    # Same cookie, another user agent (the address hash differs): the cookie knows it.
    assert visit(market, link["code"], **{"User-Agent": BROWSER + " Edg/126.0"})[1] == token
    assert click_rows(market, affiliate) == 1
    # Another browser (no cookie, another user agent) is another visitor.
    market.client.cookies.clear()
    assert visit(market, link["code"], **{"User-Agent": "Mozilla/5.0 (iPhone) Safari/604.1"})[1] != token
    assert click_rows(market, affiliate) == 2
    assert daily(market, affiliate, link) == [(2, 4, 0)]


@pytest.mark.parametrize("headers", [
    {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
    {"User-Agent": "curl/8.5.0"},
    {"User-Agent": ""},
    {"User-Agent": "python-requests/2.32.3"},
    {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
    {"User-Agent": BROWSER, "Sec-Purpose": "prefetch"},
    {"User-Agent": BROWSER, "Purpose": "prefetch"},
], ids=["googlebot", "curl", "empty", "requests", "slack-preview", "sec-purpose", "purpose"])
def test_bots_and_prefetches_are_hits_and_never_clicks(
    market: Market, shop: tuple[Any, str, Party], headers: dict[str, str]
) -> None:
    _, _, affiliate = shop
    link = market.link(affiliate)
    for _ in range(2):
        response, token = visit(market, link["code"], **headers)
        assert token is None and "set-cookie" not in response.headers
        assert response.headers["location"] == "https://partner.example/landing?x=1"
    assert click_rows(market, affiliate) == 0
    assert daily(market, affiliate, link) == [(0, 2, 2)]
    assert ok(market.client.get(f"/v1/referral-links/{link['id']}", headers=affiliate.headers))["clicks"] == 0


def test_a_visitor_counts_again_after_the_window(
    market: Market, shop: tuple[Any, str, Party], env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, affiliate = shop
    monkeypatch.setattr(env.runtime, "settings",
                        env.runtime.settings.model_copy(update={"referral_unique_click_window_seconds": 1}))
    link = market.link(affiliate)
    first = market.click(link["code"], visitor="bea")
    assert market.click(link["code"], visitor="bea") == first
    time.sleep(1.2)
    assert market.click(link["code"], visitor="bea") != first
    assert daily(market, affiliate, link) == [(2, 3, 0)]


def test_no_client_address_is_kept(market: Market, shop: tuple[Any, str, Party], env: Backend) -> None:
    _, _, affiliate = shop
    link = market.link(affiliate)
    market.click(link["code"], visitor="cy")
    if env.settings.redis_url:
        keys = [k.decode() for k in redis.Redis.from_url(env.settings.redis_url).scan_iter("aff:seen:*")]
    else:
        keys = [k for k in env.runtime.store._data if k.startswith("aff:seen:")]  # type: ignore[attr-defined]
    assert len(keys) == 2 and not any("testclient" in k or "TestBrowser" in k for k in keys)
    [row] = ok(market.client.get("/v1/affiliates/me/clicks", headers=affiliate.headers))["items"]
    assert "testclient" not in str(row)


def test_distinct_visitors_each_count_and_the_listing_shows_unique_clicks(
    market: Market, shop: tuple[Any, str, Party]
) -> None:
    _, _, affiliate = shop
    link = market.link(affiliate)
    tokens = {market.click(link["code"]) for _ in range(3)}  # three browsers
    market.click(link["code"], visitor="dee")
    market.click(link["code"], visitor="dee")
    assert len(tokens) == 3 and click_rows(market, affiliate) == 4
    assert daily(market, affiliate, link) == [(4, 5, 0)]
    assert ok(market.client.get(f"/v1/referral-links/{link['id']}", headers=affiliate.headers))["clicks"] == 4
