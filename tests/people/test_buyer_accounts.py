"""Buyer accounts through the API (orders.service.buyer_accounts), mail through a real SMTP server:
a buyer signs up, sees nothing until the link mailed to the email is used, then sees every order
placed with that email across storefronts (guest checkouts included), page by page, and nobody
else's."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from kernel.clock import clock
from tests.conftest import bearer
from tests.orders.world import cart, checkout, ok, worked_example
from tests.people.conftest import Inbox, token_in

PASSWORD = "bea-buys-many-things"


def _confirmation_token(inbox: Inbox, email: str) -> str:
    [message] = [m for m in inbox.to(email) if str(m["Subject"]).startswith("Confirm your email")]
    return token_in(Inbox.body(message))


def _sign_up(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/v1/buyer-accounts", json={"email": email, "name": "Bea Buyer", "password": password})


def test_a_buyer_sees_every_order_placed_with_their_email_across_storefronts_only_after_confirming_it(
    mail_client: TestClient, inbox: Inbox, operator: dict[str, str]
) -> None:
    client = mail_client
    world = worked_example(client, operator)
    world.storefront("S", "s-store", ["X-BASIC"])
    email = f"bea-{uuid.uuid4().hex[:6]}@example.com"
    placed = [
        ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), email=email)), 201)["id"],
        ok(checkout(client, "s-store", cart(world, ("X-BASIC", 1), email=email.upper())), 201)["id"],
        ok(checkout(client, None, cart(world, ("Y-KIT", 2), email=email)), 201)["id"],
    ]
    stranger = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), email="someone-else@example.com")), 201)

    signed = ok(_sign_up(client, email.upper()), 201)
    assert signed["email"] == email and signed["confirmed_at"] is None
    key = bearer(signed["api_key"])
    refused = ok(client.get("/v1/me/orders", headers=key), 403)
    assert refused["type"].endswith("buyer-account-not-confirmed")
    assert client.post("/v1/buyer-accounts/confirm", json={"token": "x" * 43}).status_code == 404

    token = _confirmation_token(inbox, email)
    confirmed = ok(client.post("/v1/buyer-accounts/confirm", json={"token": token}))
    assert confirmed["email"] == email and confirmed["confirmed_at"] is not None
    assert client.post("/v1/buyer-accounts/confirm", json={"token": token}).status_code == 404  # once
    assert ok(client.get("/v1/buyer-accounts/me", headers=key))["confirmed_at"] == confirmed["confirmed_at"]

    first = ok(client.get("/v1/me/orders?limit=2", headers=key))
    rest = ok(client.get(f"/v1/me/orders?limit=2&cursor={first['next_cursor']}", headers=key))
    seen = [o["id"] for o in first["items"] + rest["items"]]
    assert seen == list(reversed(placed)) and rest["next_cursor"] is None  # newest first, every storefront
    assert stranger["id"] not in seen

    # Later logins: the account's scope is the person's own id (a password key, like any member's).
    again = ok(client.post("/v1/auth/api-keys", json={"email": email, "password": PASSWORD,
                                                      "organization_id": signed["person_id"]}), 201)
    assert len(ok(client.get("/v1/me/orders", headers=bearer(again["key"])))["items"]) == 3
    # No buyer organization lives there: its routes find nothing.
    assert client.get("/v1/buyer-organizations/me", headers=key).status_code == 404


def test_an_email_is_one_account_its_link_expires_and_other_keys_see_no_buyer_orders(
    mail_client: TestClient, inbox: Inbox, operator: dict[str, str]
) -> None:
    client = mail_client
    email = f"bea-{uuid.uuid4().hex[:6]}@example.com"
    signed = ok(_sign_up(client, email), 201)
    assert _sign_up(client, email, "not-the-password").status_code == 401  # an existing person proves it
    assert _sign_up(client, email).status_code == 409
    for body in ({"email": "not-an-email", "name": "B", "password": PASSWORD},
                 {"email": email, "name": "B", "password": "short"},
                 {"email": email, "name": "B", "password": PASSWORD, "extra": 1}):
        assert client.post("/v1/buyer-accounts", json=body).status_code == 422
    token = _confirmation_token(inbox, email)
    clock.advance(timedelta(hours=49))
    assert client.post("/v1/buyer-accounts/confirm", json={"token": token}).status_code == 410
    assert client.get("/v1/me/orders", headers=bearer(signed["api_key"])).status_code == 403
    assert client.get("/v1/me/orders", headers=operator).status_code == 403  # a buyer's own route
    assert client.get("/v1/me/orders").status_code == 401
    member = ok(client.post("/v1/buyer-organizations", json={
        "name": "Acme", "email": f"ada-{uuid.uuid4().hex[:6]}@acme.example", "owner_name": "Ada",
        "password": "acme-buying-passphrase"}), 201)
    no_account = ok(client.get("/v1/me/orders", headers=bearer(member["api_key"])), 404)
    assert no_account["type"].endswith("no-buyer-account")  # a buyer without an account sees no orders here


def test_erasing_a_buyers_email_closes_their_buyer_account_after_the_export_shows_it(
    mail_client: TestClient, inbox: Inbox, operator: dict[str, str]
) -> None:
    client = mail_client
    world = worked_example(client, operator)
    email = f"bea-{uuid.uuid4().hex[:6]}@example.com"
    ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), email=email)), 201)
    signed = ok(_sign_up(client, email), 201)
    ok(client.post("/v1/buyer-accounts/confirm", json={"token": _confirmation_token(inbox, email)}))
    key = bearer(signed["api_key"])
    assert len(ok(client.get("/v1/me/orders", headers=key))["items"]) == 1

    exported = ok(client.get(f"/v1/privacy/exports?email={email}", headers=operator))
    assert exported["buyer_account"]["confirmed_at"] is not None
    erased = ok(client.post("/v1/privacy/erasures", json={"email": email}, headers=operator))
    assert (erased["orders"], erased["buyer_accounts"]) == (1, 1)
    after = client.get("/v1/me/orders", headers=key)
    assert after.status_code == 401, after.text  # the account's key is gone with its membership
    assert ok(client.get(f"/v1/privacy/exports?email={email}", headers=operator))["buyer_account"] is None
    assert ok(client.post("/v1/privacy/erasures", json={"email": email}, headers=operator))["buyer_accounts"] == 0
    assert ok(client.get("/v1/ledger/audit", headers=operator))["passed"] is True
