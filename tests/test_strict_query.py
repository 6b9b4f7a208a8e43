"""A misspelt query filter is a 422 on every router (a silently unfiltered list is a wrong answer);
the referral redirect alone takes any parameters (a link carries the affiliate's campaign tags)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.orders.world import ok, worked_example


@pytest.mark.parametrize("path", ["/v1/payout-holds?actve=true", "/v1/payout-batches?staus=completed",
                                  "/v1/affiliates?statuss=pending", "/v1/programs?sellr_id=x"])
def test_an_unknown_query_parameter_is_a_422_on_operator_lists(
    client: TestClient, operator: dict[str, str], path: str
) -> None:
    answer = client.get(path, headers=operator)

    assert answer.status_code == 422, answer.text
    assert "unknown query parameter" in answer.json()["detail"]


def test_storefront_pages_refuse_unknown_parameters_and_referral_links_keep_campaign_tags(
    client: TestClient, operator: dict[str, str]
) -> None:
    world = worked_example(client, operator)
    assert client.get("/v1/storefronts/a-store/products?limt=5").status_code == 422
    assert client.get("/v1/storefronts/a-store/products?limit=5").status_code == 200
    link = ok(client.post("/v1/referral-links", headers=world.affiliates["A"].headers,
                          json={"target_url": "https://a.example/landing"}), 201)
    followed = client.get(f"/r/{link['code']}?utm_source=newsletter", follow_redirects=False)
    assert followed.status_code == 302
