"""A catalog cursor is opaque, but it arrives from the client: a crafted one is a 422 problem."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

# A fixed id, not a random one: every pytest-xdist worker must collect the same test ids.
AN_ID = "5c57872c34154da29d6e23ab6a9b0256"


def crafted(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("sort", "cursor"), [
    ("newest", crafted("newest", None, 123)),                        # an id that is not text
    ("price_asc", crafted("price_asc", 10**30, AN_ID)),              # a key beyond any price
    ("price_desc", crafted("price_desc", -1, AN_ID)),
    ("name", crafted("name", "a\x00b", AN_ID)),                      # a NUL PostgreSQL refuses
    ("name", crafted("name", "a", None)),
])
def test_a_crafted_catalog_cursor_is_a_422_problem(
    client: TestClient, operator: dict[str, str], sort: str, cursor: str
) -> None:
    answer = client.get("/v1/catalog/products", params={"cursor": cursor, "sort": sort}, headers=operator)

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["detail"] == "cursor is not one this API returned"
