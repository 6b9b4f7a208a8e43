"""People through the API: sign-up makes an owner, invitations arrive by real SMTP and work once,
roles are changed and members removed by someone allowed to, the last owner stays, and personal
keys never exceed their person's role."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kernel.accounts import Person
from kernel.auth import Role
from kernel.clock import clock
from kernel.db import session_scope
from tests.conftest import Backend, bearer
from tests.people.conftest import (
    PASSWORD,
    Inbox,
    affiliate_with_owner,
    key_for_password,
    member_key,
    ok,
    seller_with_owner,
    token_in,
    uniq,
)


def invite_and_accept(client: TestClient, inbox: Inbox, org_id: str, inviter: dict[str, str], role: str,
                      name: str = "Tess Teammate") -> tuple[str, dict[str, str], dict[str, Any]]:
    address = f"{uniq('mate')}@example.com"
    ok(client.post(f"/v1/organizations/{org_id}/invitations", headers=inviter,
                   json={"email": address, "role": role}), 201)
    token = token_in(Inbox.body(inbox.to(address)[-1]))
    accepted = ok(client.post("/v1/invitations/accept", json={"token": token, "name": name, "password": PASSWORD}),
                  201)
    return address, bearer(accepted["api_key"]["key"]), accepted


def test_applying_with_a_password_makes_the_applicant_the_owner_and_the_old_body_still_works(
    client: TestClient, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    me = ok(client.get("/v1/me", headers=key_for_password(client, seller.owner_email or "", seller.id)))
    assert me["key_kind"] == "personal" and me["role"] == "owner" and me["organization_id"] == seller.id
    assert me["person"]["email"] == seller.owner_email  # stored lower-cased
    assert me["person"]["memberships"] == [
        {"organization_id": seller.id, "organization_kind": "seller", "role": "owner",
         "created_at": me["person"]["memberships"][0]["created_at"]}]

    old = ok(client.post("/v1/sellers", json={"name": "No Person", "email": f"{uniq('x')}@example.com"}), 201)
    assert old["owner_person_id"] is None
    org_me = ok(client.get("/v1/me", headers=bearer(old["api_key"])))
    assert org_me["key_kind"] == "organization" and org_me["role"] == "owner" and org_me["person"] is None


def test_an_existing_key_is_an_organization_key_with_the_full_role_of_its_kind(
    client: TestClient, operator: dict[str, str]
) -> None:
    me = ok(client.get("/v1/me", headers=operator))
    assert (me["key_kind"], me["organization_kind"], me["role"]) == ("organization", "operator", "admin")
    assert "payout_batches.approve" in me["permissions"] and "members.manage" in me["permissions"]
    keys = ok(client.get("/v1/api-keys", headers=operator))
    assert all(k["key_kind"] == "organization" and k["person_id"] is None and k["org_role"] is None for k in keys)


def test_invitation_mail_arrives_over_smtp_and_accepting_it_creates_the_person_with_the_role(
    mail_client: TestClient, inbox: Inbox, operator: dict[str, str]
) -> None:
    client = mail_client
    seller = seller_with_owner(client, operator)
    address = f"{uniq('Shipper')}@Example.com"
    invitation = ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=seller.key,
                                json={"email": address, "role": "fulfilment"}), 201)
    assert invitation["email"] == address.lower() and invitation["accepted_at"] is None

    [message] = inbox.to(address)
    assert "fulfilment" in Inbox.body(message) and message["Subject"].startswith("Join ")
    token = token_in(Inbox.body(message))
    assert token not in str(ok(client.get(f"/v1/organizations/{seller.id}/invitations", headers=seller.key)))

    accepted = ok(client.post("/v1/invitations/accept",
                              json={"token": token, "name": "Sam Shipper", "password": PASSWORD}), 201)
    assert accepted["membership"]["role"] == "fulfilment"
    shipper = bearer(accepted["api_key"]["key"])
    me = ok(client.get("/v1/me", headers=shipper))
    assert me["person"]["name"] == "Sam Shipper" and me["role"] == "fulfilment"
    assert "sub_orders.fulfil" in me["permissions"] and "products.create" not in me["permissions"]
    assert client.post("/v1/products", headers=shipper, json={}).status_code == 403

    members = ok(client.get(f"/v1/organizations/{seller.id}/members", headers=seller.key))
    assert sorted(m["role"] for m in members) == ["fulfilment", "owner"]

    again = client.post("/v1/invitations/accept", json={"token": token, "name": "X", "password": PASSWORD})
    assert again.status_code == 410, again.text  # single use


def test_an_invitation_expires_and_a_revoked_one_stops_working(
    mail_client: TestClient, inbox: Inbox, operator: dict[str, str]
) -> None:
    client = mail_client
    seller = seller_with_owner(client, operator)
    late, revoked = f"{uniq('late')}@example.com", f"{uniq('gone')}@example.com"
    ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=seller.key,
                   json={"email": late, "role": "viewer"}), 201)
    second = ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=seller.key,
                            json={"email": revoked, "role": "viewer"}), 201)
    ok(client.delete(f"/v1/organizations/{seller.id}/invitations/{second['id']}", headers=seller.key))
    gone = client.post("/v1/invitations/accept", json={
        "token": token_in(Inbox.body(inbox.to(revoked)[0])), "name": "G", "password": PASSWORD})
    assert gone.status_code == 410

    clock.advance(timedelta(hours=73))
    expired = client.post("/v1/invitations/accept", json={
        "token": token_in(Inbox.body(inbox.to(late)[0])), "name": "L", "password": PASSWORD})
    assert expired.status_code == 410
    assert client.post("/v1/invitations/accept", json={
        "token": "not-a-real-token-at-all", "name": "L", "password": PASSWORD}).status_code == 404


def test_an_existing_person_joins_a_second_organization_with_their_password(
    mail_client: TestClient, inbox: Inbox, operator: dict[str, str]
) -> None:
    client = mail_client
    seller, affiliate = seller_with_owner(client, operator), affiliate_with_owner(client, operator)
    address = seller.owner_email or ""
    ok(client.post(f"/v1/organizations/{affiliate.id}/invitations", headers=affiliate.key,
                   json={"email": address.upper(), "role": "marketing"}), 201)
    token = token_in(Inbox.body(inbox.to(address)[-1]))
    wrong = client.post("/v1/invitations/accept", json={"token": token, "password": "not the password"})
    assert wrong.status_code == 401
    accepted = ok(client.post("/v1/invitations/accept", json={"token": token, "password": PASSWORD}), 201)
    assert accepted["person_id"] == seller.owner_id
    me = ok(client.get("/v1/me", headers=bearer(accepted["api_key"]["key"])))
    assert {(m["organization_kind"], m["role"]) for m in me["person"]["memberships"]} == {
        ("seller", "owner"), ("affiliate", "marketing")}


def test_an_admin_cannot_grant_or_touch_the_owner_role_and_the_last_owner_stays(
    mail_client: TestClient, inbox: Inbox, operator: dict[str, str]
) -> None:
    client = mail_client
    seller = seller_with_owner(client, operator)
    owner = key_for_password(client, seller.owner_email or "", seller.id)
    _, admin, accepted = invite_and_accept(client, inbox, seller.id, owner, "admin")
    admin_id = accepted["person_id"]

    assert client.post(f"/v1/organizations/{seller.id}/invitations", headers=admin,
                       json={"email": "boss@example.com", "role": "owner"}).status_code == 403
    members = f"/v1/organizations/{seller.id}/members"
    assert client.patch(f"{members}/{seller.owner_id}", headers=admin, json={"role": "viewer"}).status_code == 403
    assert client.delete(f"{members}/{seller.owner_id}", headers=admin).status_code == 403

    last = client.patch(f"{members}/{seller.owner_id}", headers=owner, json={"role": "admin"})
    assert last.status_code == 409 and last.json()["type"].endswith("last-owner")
    assert client.delete(f"{members}/{seller.owner_id}", headers=owner).status_code == 409
    assert client.patch(f"{members}/{admin_id}", headers=owner, json={"role": "pilot"}).status_code == 422

    ok(client.patch(f"{members}/{admin_id}", headers=owner, json={"role": "owner"}))
    ok(client.patch(f"{members}/{seller.owner_id}", headers=admin, json={"role": "viewer"}))  # now an owner
    assert client.post(f"/v1/organizations/{seller.id}/invitations", headers=owner,
                       json={"email": "x@example.com", "role": "viewer"}).status_code == 403  # lowered at once


def test_a_removed_member_loses_access_at_once_and_a_lowered_role_lowers_their_keys(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    person_id, key = member_key(env, Role.SELLER, uuid.UUID(seller.id), "catalog")
    catalog = bearer(key)
    assert client.post("/v1/products", headers=catalog, json={}).status_code == 422  # allowed: bad body
    ok(client.patch(f"/v1/organizations/{seller.id}/members/{person_id}", headers=seller.key,
                    json={"role": "viewer"}))
    assert client.post("/v1/products", headers=catalog, json={}).status_code == 403
    assert ok(client.get("/v1/me", headers=catalog))["role"] == "viewer"  # the narrower of key and membership
    assert client.delete(f"/v1/organizations/{seller.id}/members/{person_id}", headers=seller.key).status_code == 204
    assert client.get("/v1/me", headers=catalog).status_code == 401


def test_personal_keys_are_never_wider_than_the_key_or_role_that_makes_them(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    seller = seller_with_owner(client, operator)
    _, key = member_key(env, Role.SELLER, uuid.UUID(seller.id), "admin")
    admin = bearer(key)
    viewer_key = ok(client.post("/v1/me/api-keys", headers=admin, json={"role": "viewer", "name": "dash"}), 201)
    assert viewer_key["role"] == "viewer"
    viewer = bearer(viewer_key["key"])
    assert client.post("/v1/me/api-keys", headers=viewer, json={"role": "catalog"}).status_code == 403
    assert client.post("/v1/me/api-keys", headers=admin, json={"role": "owner"}).status_code == 403
    catalog_key = ok(client.post("/v1/me/api-keys", headers=admin, json={"role": "catalog"}), 201)
    # catalog may not read money, which a viewer may: neither is within the other
    assert client.post("/v1/me/api-keys", headers=bearer(catalog_key["key"]), json={"role": "viewer"}).status_code \
        == 403
    assert client.post("/v1/me/api-keys", headers=seller.key, json={}).status_code == 403  # no person
    mine = ok(client.get("/v1/me/api-keys", headers=admin))
    assert {k["role"] for k in mine} == {"admin", "catalog", "viewer"}
    ok(client.delete(f"/v1/me/api-keys/{viewer_key['id']}", headers=admin))
    assert client.get("/v1/me", headers=viewer).status_code == 401

    owner_email = seller.owner_email or ""
    assert client.post("/v1/auth/api-keys", json={"email": owner_email, "password": "wrong password",
                                                  "organization_id": seller.id}).status_code == 401
    assert client.post("/v1/auth/api-keys", json={"email": owner_email, "password": PASSWORD,
                                                  "organization_id": str(uuid.uuid4())}).status_code == 404
    finance = key_for_password(client, owner_email.upper(), seller.id, role="finance")
    assert ok(client.get("/v1/me", headers=finance))["role"] == "finance"


def test_an_email_is_one_person_whatever_its_case(client: TestClient, operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    again = client.post("/v1/affiliates", json={"name": "Same Person", "email": (seller.owner_email or "").upper(),
                                                "password": "a different password"})
    assert again.status_code == 401  # that person exists: their own password, or no owner
    assert client.post("/v1/affiliates", json={"name": "Same Person", "email": seller.owner_email,
                                               "password": PASSWORD}).status_code == 201


def test_an_organization_cannot_see_or_manage_another_organizations_members(
    client: TestClient, operator: dict[str, str]
) -> None:
    first, second = seller_with_owner(client, operator), seller_with_owner(client, operator)
    assert client.get(f"/v1/organizations/{first.id}/members", headers=second.key).status_code == 404
    assert client.post(f"/v1/organizations/{first.id}/invitations", headers=second.key,
                       json={"email": "x@example.com", "role": "viewer"}).status_code == 404
    assert len(ok(client.get(f"/v1/organizations/{first.id}/members", headers=operator))) == 1


def test_a_payout_batch_names_the_finance_person_who_approved_it(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    from kernel import permissions
    from tests.payouts.conftest import credit, make_payee

    credit(env, "seller", make_payee(env), 50_000)
    person_id, key = member_key(env, Role.OPERATOR, permissions.OPERATOR_TEAM_ID, "finance")
    _, support_key = member_key(env, Role.OPERATOR, permissions.OPERATOR_TEAM_ID, "support")
    finance = bearer(key)
    batch = ok(client.post("/v1/payout-batches", headers=finance, json={"currency": "USD"}), 201)
    assert client.post(f"/v1/payout-batches/{batch['id']}/approve", headers=bearer(support_key)).status_code == 403
    approved = ok(client.post(f"/v1/payout-batches/{batch['id']}/approve", headers=finance))
    assert approved["approved_by"] == f"person:{person_id}"


@pytest.mark.postgres_only
def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    """Row locks, not luck: both requests run at the same time on PostgreSQL; one wins, the
    other is refused: 409 (it waited for the lock and found the last owner) or 403 (it started
    after it was demoted); never a deadlock's 500, never an organization without an owner."""
    seller = seller_with_owner(client, operator)
    second_id, second_key = member_key(env, Role.SELLER, uuid.UUID(seller.id), "owner")
    first = key_for_password(client, seller.owner_email or "", seller.id)
    members = f"/v1/organizations/{seller.id}/members"
    barrier = threading.Barrier(2)

    def demote(headers: dict[str, str], target: str) -> int:
        barrier.wait()
        status: int = client.patch(f"{members}/{target}", headers=headers, json={"role": "viewer"}).status_code
        return status

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(lambda args: demote(*args), [(first, str(second_id)),
                                                                  (bearer(second_key), seller.owner_id or "")]))
    assert statuses[0] == 200 and statuses[1] in (403, 409), statuses
    roles = [m["role"] for m in ok(client.get(members, headers=seller.key))]
    assert sorted(roles) == ["owner", "viewer"]


def test_a_password_is_stored_only_as_an_argon2id_hash(client: TestClient, env: Backend,
                                                     operator: dict[str, str]) -> None:
    seller = seller_with_owner(client, operator)
    with session_scope(env.runtime.sessions) as session:
        person = session.get(Person, uuid.UUID(seller.owner_id or ""))
        assert person is not None and person.password_hash is not None
        stored = person.password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    key_for_password(client, seller.owner_email or "", seller.id)  # and it still logs in
