"""The mail outbox: written with the invitation, sent over real SMTP after the commit, kept and
retried when the server is down, and (no SMTP configured) kept for `marketplace mail` to show."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from kernel import mail
from kernel.clock import clock
from kernel.db import session_scope
from kernel.mail import OutboxMail
from kernel.runtime import Runtime, set_runtime
from kernel.settings import get_settings
from marketplace import cli
from tests.conftest import Backend
from tests.people.conftest import Inbox, free_port, ok, seller_with_owner, token_in


def _outbox(env: Backend) -> list[OutboxMail]:
    with session_scope(env.runtime.sessions) as session:
        return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def test_without_smtp_mail_waits_in_the_outbox_and_marketplace_mail_shows_the_link(
    client: TestClient, env: Backend, operator: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seller = seller_with_owner(client, operator)
    ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=seller.key,
                   json={"email": "newcomer@example.com", "role": "catalog"}), 201)
    [row] = _outbox(env)
    assert (row.to_address, row.kind, row.sent_at, row.attempts) == ("newcomer@example.com", "invitation", None, 0)

    monkeypatch.setenv("DATABASE_URL", env.settings.database_url)
    monkeypatch.delenv("SMTP_HOST", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["mail"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "newcomer@example.com" in result.output and "waiting" in result.output
    token = token_in(result.output)
    accepted = client.post("/v1/invitations/accept", json={"token": token, "name": "New", "password": "x" * 12})
    assert accepted.status_code == 201, accepted.text


def test_a_message_that_fails_to_send_stays_unsent_and_is_sent_when_the_server_is_back(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    down = env.settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_tls": "none",
                                           "smtp_timeout_seconds": 2.0})
    runtime = Runtime(down)
    set_runtime(runtime)
    try:
        seller = seller_with_owner(client, operator)
        ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=seller.key,
                       json={"email": "later@example.com", "role": "viewer"}), 201)  # the invitation stands
        [row] = _outbox(env)
        assert row.sent_at is None and row.attempts == 1 and "ConnectionRefused" in (row.last_error or "")
        assert mail.retry_delay(1) == 10 and mail.retry_delay(3) == 40 and mail.retry_delay(30) == 3600

        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=down.smtp_port)
        controller.start()
        try:
            clock.advance(timedelta(minutes=2))  # the sweeper leaves fresh messages to their own task
            assert mail.resend_unsent() == 1
            assert mail.resend_unsent() == 0  # sent once
        finally:
            controller.stop()
        [message] = inbox.to("later@example.com")
        assert "viewer" in Inbox.body(message)
        [row] = _outbox(env)
        assert row.sent_at is not None and row.attempts == 2 and row.last_error is None
        # the task run that changed the row (its failed first attempt) left a system event; the
        # sweeper, called here as a plain function, is no task run
        sends = ok(client.get("/v1/audit-events", headers=operator, params={"action": "task mail.send"}))["items"]
        assert [(e["actor_type"], e["object_id"]) for e in sends] == [("system", str(row.id))]
    finally:
        set_runtime(env.runtime)
        runtime.close()


def test_the_outbox_row_is_written_in_the_same_transaction_as_its_cause(env: Backend) -> None:
    """A rollback takes the message with it: no mail for an invitation that was never stored."""
    try:
        with session_scope(env.runtime.sessions) as session:
            mail.queue(session, "ghost@example.com", "Boo", "never", kind="test")
            raise RuntimeError("the request failed after queueing")
    except RuntimeError:
        pass
    assert all(row.to_address != "ghost@example.com" for row in _outbox(env))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # a local test relay
def test_smtp_credentials_and_the_from_address_of_the_settings_are_used(
    client: TestClient, env: Backend, operator: dict[str, str]
) -> None:
    """A relay that requires AUTH gets the configured user and password, and the From header is
    MAIL_FROM. (Plain SMTP here: TLS needs a certificate; `smtp_tls` picks only the transport.)"""
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(_server: object, _session: object, _envelope: object, _mechanism: str,
                      auth_data: object) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"relay-user", b"relay-pass"))

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    runtime = Runtime(env.settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": controller.port, "smtp_tls": "none", "smtp_user": "relay-user",
        "smtp_password": SecretStr("relay-pass"), "mail_from": "Team Desk <desk@market.example>"}))
    set_runtime(runtime)
    try:
        seller = seller_with_owner(client, operator)
        ok(client.post(f"/v1/organizations/{seller.id}/invitations", headers=seller.key,
                       json={"email": "welcome@example.com", "role": "viewer"}), 201)
    finally:
        set_runtime(env.runtime)
        runtime.close()
        controller.stop()
    assert logins == [(b"relay-user", b"relay-pass")]
    [message] = inbox.to("welcome@example.com")
    assert message["From"] == "Team Desk <desk@market.example>"
