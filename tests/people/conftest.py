"""People test fixtures: a real SMTP server (aiosmtpd) the platform sends to, and builders that
go through the HTTP API (applications with an owner, invitations, personal keys)."""

from __future__ import annotations

import email
import itertools
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient

from kernel import permissions
from kernel.accounts import Person
from kernel.auth import Role
from kernel.db import session_scope
from kernel.people import add_membership, create_person, issue_personal_key
from kernel.runtime import Runtime, set_runtime
from marketplace.app import create_app
from tests.conftest import Backend, bearer

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def uniq(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


@dataclass
class Inbox:
    """What arrived at the SMTP server."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(content)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    @staticmethod
    def body(message: Message) -> str:
        payload = message.get_payload(decode=True)
        return payload.decode() if isinstance(payload, bytes) else str(message.get_payload())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def mail_client(env: Backend, smtp_server: tuple[Inbox, int]) -> Iterator[TestClient]:
    """A platform configured to send mail to the test SMTP server (in-process tasks read the
    runtime this sets)."""
    _, port = smtp_server
    settings = env.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none"})
    runtime = Runtime(settings)
    set_runtime(runtime)
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            yield client
    finally:
        set_runtime(env.runtime)
        runtime.close()


@pytest.fixture
def inbox(smtp_server: tuple[Inbox, int]) -> Inbox:
    return smtp_server[0]


TOKEN = re.compile(r"token=([A-Za-z0-9_\-]+)")


def token_in(body: str) -> str:
    match = TOKEN.search(body)
    assert match, body
    return match.group(1)


@dataclass
class Org:
    id: str
    kind: Role
    key: dict[str, str]  # the organization key
    owner_email: str | None = None
    owner_id: str | None = None


def seller_with_owner(client: TestClient, operator: dict[str, str], *, approve: bool = True) -> Org:
    owner_email = f"{uniq('owner')}@Example.com"
    body = ok(client.post("/v1/sellers", json={"name": uniq("Seller"), "email": owner_email,
                                                "password": PASSWORD, "owner_name": "Olive Owner"}), 201)
    seller_id = body["seller"]["id"]
    if approve:
        ok(client.post(f"/v1/sellers/{seller_id}/approve", headers=operator))
    return Org(seller_id, Role.SELLER, bearer(body["api_key"]), owner_email.lower(), body["owner_person_id"])


def affiliate_with_owner(client: TestClient, operator: dict[str, str]) -> Org:
    owner_email = f"{uniq('aff')}@example.com"
    body = ok(client.post("/v1/affiliates", json={"name": uniq("Affiliate"), "email": owner_email,
                                                   "password": PASSWORD, "markets": ["US"]}), 201)
    affiliate_id = body["affiliate"]["id"]
    ok(client.post(f"/v1/affiliates/{affiliate_id}/approve", headers=operator))
    return Org(affiliate_id, Role.AFFILIATE, bearer(body["api_key"]), owner_email, body["owner_person_id"])


def key_for_password(client: TestClient, email_address: str, organization_id: str, password: str = PASSWORD,
                     role: str | None = None) -> dict[str, str]:
    payload: dict[str, Any] = {"email": email_address, "password": password, "organization_id": organization_id}
    if role:
        payload["role"] = role
    return bearer(ok(client.post("/v1/auth/api-keys", json=payload), 201)["key"])


def member_key(env: Backend, kind: Role, organization_id: uuid.UUID, role: str) -> tuple[uuid.UUID, str]:
    """A new person with `role` in the organization, and their key (straight through the service:
    the matrix needs one per role, and invitations have tests of their own)."""
    with session_scope(env.runtime.sessions) as session:
        person: Person = create_person(session, f"{uniq(role)}@example.com", role, PASSWORD)
        add_membership(session, person, kind, organization_id, role)
        issued = issue_personal_key(session, person.id, kind, organization_id, role, "test")
        return person.id, issued.key


def operator_org_id() -> str:
    return str(permissions.OPERATOR_TEAM_ID)
