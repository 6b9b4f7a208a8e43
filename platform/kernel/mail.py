"""Email, through an outbox: a message is a row written in the same transaction as what caused it
(an invitation, a password reset), and the `mail.send` task sends it over SMTP after the commit.

- With SMTP configured (settings.smtp_host), the task sends it, retrying with growing back-off
  (a beat job re-sends what is still unsent, so a lost task or a long outage loses nothing).
- Without SMTP (the embedded default), mail stays in the outbox: `marketplace mail` lists it, so a
  newcomer can follow an invitation link locally.

Delivery is at least once: a worker killed between the SMTP server's "250 OK" and the commit
that records it sends that message again. Marking first would make it at most once, and a lost
invitation is worse than a duplicate one.
"""

from __future__ import annotations

import functools
import smtplib
import ssl
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import structlog
from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id
from kernel.runtime import get_runtime
from kernel.settings import Settings
from kernel.tasking import BeatSpec, TaskSpec, enqueue, enqueue_after_commit, task_session

log = structlog.get_logger(__name__)

SEND_TASK = "mail.send"
MAX_ATTEMPTS = 8  # then the message waits for an operator (or `marketplace mail`) to look at it


class OutboxMail(TimestampMixin, Base):
    __tablename__ = "mail_outbox"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(40), default="")  # "invitation", ...: what sent it
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None] = mapped_column(index=True)


def queue(session: Session, to_address: str, subject: str, body: str, *, kind: str = "") -> OutboxMail:
    """Put a message in the outbox (same transaction as the caller) and send it after the commit."""
    row = OutboxMail(id=new_id(), to_address=to_address, subject=subject, body=body, kind=kind, attempts=0)
    session.add(row)
    session.flush()
    enqueue_after_commit(session, SEND_TASK, str(row.id))
    return row


def outbox_row(to_address: str, subject: str, body: str, *, kind: str, now: datetime) -> dict[str, Any]:
    """A message as the row a bulk write inserts with the event's own rows (the checkout writes its
    order-link mail in its one statement); whoever commits it sends it (`send_later`)."""
    return {"id": new_id(), "to_address": to_address, "subject": subject, "body": body, "kind": kind,
            "attempts": 0, "last_error": None, "sent_at": None, "created_at": now}


def send_later(settings: Settings, mail_id: uuid.UUID) -> None:
    """Send a committed outbox row (`outbox_row`) now, through the task, when SMTP is configured
    (without it the task would only skip it: no broker message for nothing). The beat job sends it
    if this one is lost."""
    if smtp_configured(settings):
        try:
            enqueue(SEND_TASK, str(mail_id))
        except Exception:  # the row is committed; the beat job (resend_unsent) sends it
            log.exception("mail_enqueue_failed", mail_id=str(mail_id))


def list_outbox(session: Session, *, unsent_only: bool = False, limit: int = 50) -> list[OutboxMail]:
    stmt = select(OutboxMail).order_by(OutboxMail.id.desc()).limit(limit)
    if unsent_only:
        stmt = stmt.where(OutboxMail.sent_at.is_(None))
    return list(session.scalars(stmt))


def smtp_configured(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def _message(settings: Settings, row: OutboxMail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Message-ID"] = f"<{row.id}@{settings.mail_from.rpartition('@')[2] or 'marketplace'}>"
    message.set_content(row.body)
    return message


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The system's CA store, loaded once per process: loading it costs about 20 ms of CPU, which
    was most of what sending one message cost (the worker sent ~7 messages/s; loadtests/chaos.py)."""
    return ssl.create_default_context()


def deliver(settings: Settings, message: EmailMessage) -> None:
    """One SMTP conversation: implicit TLS (`smtp_tls=ssl`), STARTTLS, or plain (local relays, tests)."""
    assert settings.smtp_host is not None
    timeout = settings.smtp_timeout_seconds
    smtp: smtplib.SMTP
    if settings.smtp_tls == "ssl":
        smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout, context=tls_context())
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with smtp:
        if settings.smtp_tls == "starttls":
            smtp.starttls(context=tls_context())
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_user, password)
        smtp.send_message(message)


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failures: 10 s, 20 s, 40 s ... capped at an hour."""
    return float(min(3600, 10 * 2 ** max(0, attempts - 1)))


def send_one(settings: Settings, session: Session, mail_id: uuid.UUID) -> tuple[str, int]:
    """Send one message if it is still unsent: ("sent" | "failed" | "skipped", attempts so far).
    Skipped: already sent, unknown, or SMTP not configured (the message waits in the outbox)."""
    if not smtp_configured(settings):
        return "skipped", 0
    row = session.get(OutboxMail, mail_id, with_for_update=True)  # one sender per message at a time
    if row is None or row.sent_at is not None:
        return "skipped", 0 if row is None else row.attempts
    row.attempts += 1
    try:
        deliver(settings, _message(settings, row))
    except (OSError, smtplib.SMTPException) as exc:
        row.last_error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("mail_send_failed", mail_id=str(mail_id), attempts=row.attempts, error=row.last_error)
        return "failed", row.attempts
    row.sent_at = clock.now()
    row.last_error = None
    return "sent", row.attempts


def send_task(self: Any, mail_id: str) -> str:
    settings = get_runtime().settings
    with task_session() as session:
        outcome, attempts = send_one(settings, session, uuid.UUID(mail_id))
    if outcome == "failed" and not self.request.is_eager:
        # In-process (no broker) there is no queue to wait in: the beat job, or `marketplace mail
        # --send`, tries again.
        raise self.retry(countdown=retry_delay(attempts))
    return outcome


RESEND_TASK = "mail.resend_unsent"


def resend_unsent() -> int:
    """Beat: re-send what is still unsent (a task lost with its broker, retries run out)."""
    settings = get_runtime().settings
    if not smtp_configured(settings):
        return 0
    cutoff = clock.now() - timedelta(minutes=1)  # leave fresh messages to their own task
    with task_session() as session:
        ids = list(session.scalars(
            select(OutboxMail.id).where(OutboxMail.sent_at.is_(None), OutboxMail.created_at < cutoff,
                                        OutboxMail.attempts < MAX_ATTEMPTS * 2).limit(100)))
    sent = 0
    for mail_id in ids:
        with task_session() as session:
            sent += send_one(settings, session, mail_id)[0] == "sent"
    return sent


TASKS = (
    TaskSpec(SEND_TASK, send_task, bind=True, max_retries=MAX_ATTEMPTS),
    TaskSpec(RESEND_TASK, resend_unsent),
)
BEAT = (BeatSpec("mail-resend-unsent", RESEND_TASK, 300.0),)
