"""Referral links: the click redirect with its attribution token, counters (Redis, flushed in
batches by the beat task; direct on the embedded default), and reports an affiliate sees."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from affiliates.service.links import COUNTER_PREFIX
from affiliates.tasks import flush_clicks
from kernel.tasking import installed_celery
from tests.affiliates.conftest import Market, ok
from tests.conftest import Backend


def test_click_redirects_with_token_in_query_and_cookie(market: Market) -> None:
    affiliate = market.affiliate()
    link = market.link(affiliate, code="spring-sale", target_url="https://partner.example/p?utm=x&mk_ref=old")
    assert link["url"].endswith("/r/spring-sale")
    response = market.client.get("/r/spring-sale", follow_redirects=False, headers={"referer": "https://blog.example"})
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert (location.netloc, location.path, query["utm"]) == ("partner.example", "/p", ["x"])
    token = query["mk_ref"]
    assert token == [response.cookies["mk_ref"]] and len(token[0]) >= 32
    assert "httponly" in response.headers["set-cookie"].lower()
    clicks = ok(market.client.get("/v1/affiliates/me/clicks", headers=affiliate.headers))["items"]
    assert [(c["link_id"], c["referer"]) for c in clicks] == [(link["id"], "https://blog.example")]
    assert market.client.get("/r/no-such-code", follow_redirects=False).status_code == 404


def test_product_and_storefront_links_land_on_the_storefront_page(market: Market) -> None:
    seller = market.seller()
    (item,) = market.product(seller, 1000)
    program_id = market.program(seller, {"default": {"bps": 500}})
    affiliate, outsider = market.affiliate(), market.affiliate()
    market.join(affiliate, program_id)
    slug = market.storefront(affiliate, item)
    shop_id = ok(market.client.get(f"/v1/storefronts/{slug}/settings", headers=affiliate.headers))["id"]
    link = market.link(affiliate, target_url=None, product_id=item.product_id, storefront_id=shop_id)
    location = market.client.get(f"/r/{link['code']}", follow_redirects=False).headers["location"]
    assert f"/s/{slug}/products/{item.product_id}?mk_ref=" in location
    assert market.client.post("/v1/referral-links", headers=outsider.headers,
                              json={"product_id": item.product_id}).status_code == 409
    assert market.client.post("/v1/referral-links", headers=outsider.headers,
                              json={"storefront_id": shop_id}).status_code == 404
    assert market.client.post("/v1/referral-links", headers=outsider.headers,
                              json={"code": link["code"], "target_url": "https://x.example"}).status_code == 409


def test_an_affiliate_sees_only_its_own_links_and_clicks(market: Market) -> None:
    mine, theirs = market.affiliate("Mine"), market.affiliate("Theirs")
    my_link, their_link = market.link(mine), market.link(theirs)
    market.click(my_link["code"])
    market.click(their_link["code"])
    market.click(their_link["code"])
    assert len(ok(market.client.get("/v1/affiliates/me/clicks", headers=mine.headers))["items"]) == 1
    for path in (f"/v1/referral-links/{their_link['id']}", f"/v1/referral-links/{their_link['id']}/clicks/daily",
                 f"/v1/affiliates/me/clicks?link_id={their_link['id']}"):
        assert market.client.get(path, headers=mine.headers).status_code == 404, path
    assert [link["id"] for link in ok(market.client.get("/v1/referral-links", headers=mine.headers))["items"]] == [
        my_link["id"]]
    assert len(ok(market.client.get("/v1/affiliates/me/clicks", headers=market.operator))["items"]) == 3


def test_deactivated_link_stops_redirecting(market: Market) -> None:
    affiliate = market.affiliate()
    link = market.link(affiliate)
    ok(market.client.post(f"/v1/referral-links/{link['id']}/deactivate", headers=affiliate.headers))
    assert market.client.get(f"/r/{link['code']}", follow_redirects=False).status_code == 404


def test_clicks_are_counted_directly_without_redis(market: Market, env: Backend) -> None:
    if env.settings.redis_url:
        pytest.skip("the embedded default (no Redis) counts in the request")
    affiliate = market.affiliate()
    link = market.link(affiliate)
    for _ in range(3):
        market.click(link["code"])
    assert ok(market.client.get(f"/v1/referral-links/{link['id']}", headers=affiliate.headers))["clicks"] == 3
    assert flush_clicks() == 0


@pytest.mark.postgres_only
def test_click_counters_go_through_redis_and_the_beat_task_flushes_them(market: Market, env: Backend) -> None:
    assert env.settings.redis_url
    real_redis = redis.Redis.from_url(env.settings.redis_url)
    affiliate = market.affiliate()
    first, second = market.link(affiliate), market.link(affiliate)
    for _ in range(3):
        market.click(first["code"])
    market.click(second["code"])
    # Counted in Redis, not yet in the database; the click rows attribution needs already exist.
    assert sum(int(real_redis.get(k) or 0) for k in real_redis.scan_iter(f"{COUNTER_PREFIX}*")) == 4
    assert ok(market.client.get(f"/v1/referral-links/{first['id']}", headers=affiliate.headers))["clicks"] == 0
    assert len(ok(market.client.get("/v1/affiliates/me/clicks", headers=affiliate.headers))["items"]) == 4

    assert flush_clicks() == 4
    assert list(real_redis.scan_iter(f"{COUNTER_PREFIX}*")) == []
    daily = ok(market.client.get(f"/v1/referral-links/{first['id']}/clicks/daily", headers=affiliate.headers))
    assert [d["clicks"] for d in daily] == [3]
    market.click(first["code"])
    assert flush_clicks() == 1
    assert flush_clicks() == 0
    totals = {link["id"]: link["clicks"]
              for link in ok(market.client.get("/v1/referral-links", headers=affiliate.headers))["items"]}
    assert totals == {first["id"]: 4, second["id"]: 1}


def test_flush_is_registered_with_beat() -> None:
    entry = installed_celery().conf.beat_schedule["affiliates-flush-clicks"]
    assert entry["task"] == "affiliates.flush_clicks" and entry["schedule"] <= 60


@pytest.mark.postgres_only
def test_a_failed_flush_puts_the_counts_back_in_redis(
    market: Market, env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    affiliate = market.affiliate()
    link = market.link(affiliate)
    market.click(link["code"])
    market.click(link["code"])

    def database_down(*_args: object) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr("affiliates.tasks.add_daily_counts", database_down)
    with pytest.raises(RuntimeError):
        flush_clicks()
    monkeypatch.undo()
    assert flush_clicks() == 2
    assert ok(market.client.get(f"/v1/referral-links/{link['id']}", headers=affiliate.headers))["clicks"] == 2
