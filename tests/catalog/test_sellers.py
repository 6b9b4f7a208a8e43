"""Sellers through the HTTP API: applying, review by an operator, the seller's own profile."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.catalog.conftest import apply_seller, approved_seller, create_product, unique_email
from tests.conftest import Backend, bearer


def test_application_returns_the_seller_and_a_working_seller_key_once(client: TestClient) -> None:
    email = unique_email()
    response = client.post("/v1/sellers", json={"name": "Acme", "email": email.upper(), "description": "x"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["seller"]["status"] == "pending" and body["seller"]["payout_status"] == "not_started"
    assert body["seller"]["email"] == email  # stored lower-case: one account per mailbox
    assert body["api_key"].startswith(body["api_key_prefix"])
    me = client.get("/v1/sellers/me", headers=bearer(body["api_key"]))
    assert me.status_code == 200 and me.json()["id"] == body["seller"]["id"]
    keys = client.get("/v1/api-keys", headers=bearer(body["api_key"])).json()
    assert [(k["role"], k["subject_id"]) for k in keys] == [("seller", body["seller"]["id"])]
    assert "key" not in keys[0]


def test_second_application_with_the_same_email_is_a_409_problem(client: TestClient) -> None:
    email = unique_email()
    apply_seller(client, email=email)
    response = client.post("/v1/sellers", json={"name": "Other", "email": email.title()})
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/seller-email-taken")


def test_application_validates_its_fields(client: TestClient) -> None:
    bad = [
        {"name": "", "email": unique_email()},
        {"name": "A", "email": "not-an-email"},
        {"name": "A", "email": unique_email(), "website": "ftp://x"},
        {"name": "A", "email": unique_email(), "unknown": 1},
    ]
    for body in bad:
        response = client.post("/v1/sellers", json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")


def test_applications_are_rate_limited_per_address(
    client: TestClient, env: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(env.runtime, "settings", env.runtime.settings.model_copy(
        update={"rate_limit_public_per_minute": 2}
    ))
    codes = [client.post("/v1/sellers", json={"name": "A", "email": unique_email()}).status_code for _ in range(5)]
    # fixed one-minute windows: even if a window ends mid-test, the third request of one is refused
    assert codes[:2] == [201, 201] and 429 in codes


def test_operator_lists_sellers_by_status_across_cursor_pages(client: TestClient, operator: dict[str, str]) -> None:
    pending = [apply_seller(client, f"Pending {i}")[0] for i in range(3)]
    approved, _ = approved_seller(client, operator, "Approved")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"status": "pending", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/sellers", params=params, headers=operator).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == pending
    everyone = client.get("/v1/sellers", headers=operator).json()["items"]
    assert [s["id"] for s in everyone] == [*pending, approved]


def test_operator_approves_and_rejects_with_a_reason(client: TestClient, operator: dict[str, str]) -> None:
    seller_id, headers = apply_seller(client)
    rejected = client.post(f"/v1/sellers/{seller_id}/reject", json={"reason": "no website"}, headers=operator)
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["status_reason"]) == ("rejected", "no website")
    assert client.get("/v1/sellers/me", headers=headers).json()["status"] == "rejected"
    assert client.post(f"/v1/sellers/{seller_id}/reject", json={"reason": ""}, headers=operator).status_code == 422
    approved = client.post(f"/v1/sellers/{seller_id}/approve", headers=operator)
    assert (approved.json()["status"], approved.json()["status_reason"]) == ("approved", None)
    assert client.get(f"/v1/sellers/{seller_id}", headers=operator).json()["status"] == "approved"


def test_review_endpoints_are_for_operators_only(client: TestClient, operator: dict[str, str]) -> None:
    seller_id, headers = apply_seller(client)
    assert client.post(f"/v1/sellers/{seller_id}/approve", headers=headers).status_code == 403
    assert client.get("/v1/sellers", headers=headers).status_code == 403
    assert client.get("/v1/sellers").status_code == 401
    assert client.post(f"/v1/sellers/{'0' * 8}-0000-0000-0000-{'0' * 12}/approve", headers=operator).status_code == 404


def test_seller_updates_its_profile_and_webhook_url(client: TestClient) -> None:
    _, headers = apply_seller(client)
    response = client.patch("/v1/sellers/me", json={
        "name": "Acme Ltd", "webhook_url": "https://acme.example/hooks",
    }, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["webhook_url"], body["website"]) == (
        "Acme Ltd", "https://acme.example/hooks", "https://acme.example/"
    )
    cleared = client.patch("/v1/sellers/me", json={"webhook_url": None}, headers=headers).json()
    assert cleared["webhook_url"] is None and cleared["name"] == "Acme Ltd"
    assert client.patch("/v1/sellers/me", json={"webhook_url": "not a url"}, headers=headers).status_code == 422
    assert client.patch("/v1/sellers/me", json={"status": "approved"}, headers=headers).status_code == 422


def test_unapproved_seller_may_draft_but_not_publish(client: TestClient, operator: dict[str, str]) -> None:
    seller_id, headers = apply_seller(client)
    product = create_product(client, headers)
    response = client.post(f"/v1/products/{product['id']}/publish", headers=headers)
    assert response.status_code == 409 and response.json()["type"].endswith("/seller-not-approved")
    client.post(f"/v1/sellers/{seller_id}/approve", headers=operator)
    assert client.post(f"/v1/products/{product['id']}/publish", headers=headers).status_code == 200


def test_rejecting_a_seller_takes_its_products_out_of_the_catalog(
    client: TestClient, operator: dict[str, str]
) -> None:
    seller_id, headers = approved_seller(client, operator)
    product = create_product(client, headers)
    client.post(f"/v1/products/{product['id']}/publish", headers=headers)
    assert client.get(f"/v1/catalog/products/{product['id']}", headers=operator).status_code == 200
    client.post(f"/v1/sellers/{seller_id}/reject", json={"reason": "fraud"}, headers=operator)
    assert client.get(f"/v1/catalog/products/{product['id']}", headers=operator).status_code == 404
    assert client.get("/v1/catalog/products", headers=operator).json()["items"] == []
    client.post(f"/v1/sellers/{seller_id}/approve", headers=operator)
    assert client.get(f"/v1/catalog/products/{product['id']}", headers=operator).status_code == 200
