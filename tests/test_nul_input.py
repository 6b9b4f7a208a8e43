"""NUL characters (which PostgreSQL cannot store) are refused with a 4xx problem on both backends,
in bodies, paths and query strings, and nothing is written."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.orders.world import cart, checkout, ok, worked_example

PROBLEM = "application/problem+json"


def test_a_nul_anywhere_in_a_body_is_a_422_problem(client: TestClient) -> None:
    refused = client.post("/v1/sellers", json={"name": "Acme\x00Ltd", "email": "acme@sellers.example"})

    assert refused.status_code == 422 and refused.headers["content-type"].startswith(PROBLEM)
    assert "NUL" in refused.json()["detail"]
    assert client.post("/v1/sellers", json={"name": "Acme Ltd", "email": "acme@sellers.example"}).status_code == 201


def test_a_checkout_with_a_nul_in_a_nested_field_writes_no_order(
    client: TestClient, operator: dict[str, str]
) -> None:
    world = worked_example(client, operator)
    body = cart(world, ("Y-KIT", 1))
    body["buyer"]["name"] = "Bob\x00"

    refused = checkout(client, "a-store", body)

    assert refused.status_code == 422 and refused.headers["content-type"].startswith(PROBLEM)
    assert ok(client.get("/v1/orders", headers=operator))["items"] == []


@pytest.mark.parametrize("path", ["/v1/storefronts/a%00b", "/v1/storefronts/a%00b/products", "/r/ab%00cd",
                                  "/v1/catalog/products?q=a%00b"])
def test_a_nul_in_a_path_or_query_string_is_a_400_problem(client: TestClient, path: str) -> None:
    refused = client.get(path, follow_redirects=False)

    assert refused.status_code == 400 and refused.headers["content-type"].startswith(PROBLEM), refused.text
    assert refused.json()["detail"] == "the path or query string contains a NUL (%00) character"
