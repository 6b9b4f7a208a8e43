"""Outbound webhooks to sellers and affiliates (order.created, sub_order.*, commission.available,
payout.paid ...): signed, delivered by Celery after the transaction commits, retried with
exponential backoff, and logged per attempt in `webhook_deliveries`.

Signature: header `Marketplace-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
the same scheme Stripe uses, so receivers can reuse their verification code.

Each recipient has its own signing secret (`recipient_secret`), derived from the platform's
`WEBHOOK_SIGNING_SECRET` (or, unset, the installation's generated secret: kernel/installation.py)
and the recipient's identity, and reads it with its own API key at `GET /v1/webhook-secret`. One
recipient's secret tells nothing about another's, so a seller can verify its deliveries but cannot
forge another seller's. Rotating the platform secret rotates all.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import JSON, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id
from kernel.errors import Unprocessable
from kernel.installation import webhook_signing_secret
from kernel.tasking import BeatSpec, TaskSpec, enqueue, enqueue_after_commit, task_session

log = structlog.get_logger(__name__)

DELIVER = "webhooks.deliver"
MAX_ATTEMPTS = 8
BASE_BACKOFF_SECONDS = 10
DELIVERY_TIMEOUT_SECONDS = 5.0
RETRY_GRACE = timedelta(minutes=5)


class WebhookDelivery(TimestampMixin, Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    recipient_type: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[uuid.UUID] = mapped_column(index=True)
    url: Mapped[str] = mapped_column(String(500))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()


def recipient_secret(platform_secret: str, recipient_type: str, recipient_id: uuid.UUID) -> str:
    """The signing secret of one recipient: HMAC-SHA256 of its identity under the platform secret."""
    derived = hmac.new(platform_secret.encode(), f"{recipient_type}:{recipient_id}".encode(), hashlib.sha256)
    return f"whsec_{derived.hexdigest()}"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def emit(
    session: Session, *, recipient_type: str, recipient_id: uuid.UUID, url: str | None,
    event_type: str, data: dict[str, Any],
) -> uuid.UUID | None:
    """Record a webhook for delivery after commit; recipients without a URL get none."""
    if not url:
        return None
    delivery = WebhookDelivery(
        recipient_type=recipient_type, recipient_id=recipient_id, url=url, event_type=event_type,
        payload={"id": f"evt_{new_id().hex}", "type": event_type, "created": int(clock.now().timestamp()),
                 "data": data},
        next_attempt_at=clock.now(),
    )
    session.add(delivery)
    session.flush()
    enqueue_after_commit(session, DELIVER, str(delivery.id))
    return delivery.id


def non_public_destination(url: str) -> str | None:
    """Why `url` must not be called from the platform's network (its host resolves to a loopback,
    private, link-local or otherwise non-public address), or None. Checked on every attempt, so a
    name that later resolves elsewhere is caught too; a name that does not resolve is left to fail
    as the POST would."""
    parts = urlsplit(url)
    if not parts.hostname:
        return "refused: the URL has no host"
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            return f"refused: {parts.hostname} resolves to a non-public address ({address})"
    return None


def check_webhook_url(url: str | None, *, allow_private_hosts: bool) -> None:
    """When a payee sets its webhook_url: a 422 now for a URL every delivery would refuse."""
    if url and not allow_private_hosts and (refused := non_public_destination(url)) is not None:
        raise Unprocessable(f"webhook_url {refused}; deliveries go to public addresses only")


def attempt_delivery(
    session: Session, delivery: WebhookDelivery, platform_secret: str, *, allow_private_hosts: bool = True
) -> bool:
    """One POST to the recipient, signed with its own secret; records the outcome on the row.
    True when delivered. Without `allow_private_hosts`, a URL on a non-public address fails for
    good without a request."""
    refused = None if allow_private_hosts else non_public_destination(delivery.url)
    if refused is not None:
        delivery.attempts += 1
        delivery.status, delivery.last_error, delivery.next_attempt_at = "failed", refused, None
        log.warning("webhook_delivery_refused", delivery_id=str(delivery.id), url=delivery.url, error=refused)
        return False
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    secret = recipient_secret(platform_secret, delivery.recipient_type, delivery.recipient_id)
    headers = {
        "Content-Type": "application/json",
        "Marketplace-Signature": sign(secret, body, int(time.time())),
        "Marketplace-Event": delivery.event_type,
        "Marketplace-Delivery": str(delivery.id),
    }
    delivery.attempts += 1
    try:
        response = httpx.post(delivery.url, content=body, headers=headers, timeout=DELIVERY_TIMEOUT_SECONDS)
        delivery.last_status_code = response.status_code
        ok = 200 <= response.status_code < 300
        delivery.last_error = None if ok else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        ok = False
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
    if ok:
        delivery.status = "delivered"
        delivery.delivered_at = clock.now()
        delivery.next_attempt_at = None
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = clock.now() + timedelta(seconds=backoff_seconds(delivery.attempts))
    log.info("webhook_delivery", delivery_id=str(delivery.id), event_type=delivery.event_type,
             attempt=delivery.attempts, status=delivery.status, error=delivery.last_error)
    return ok


def backoff_seconds(attempts: int) -> int:
    return int(BASE_BACKOFF_SECONDS * 2 ** (attempts - 1))


def deliver(self: Any, delivery_id: str) -> str:
    """Deliver one webhook; on failure Celery retries it with exponential backoff."""
    from kernel.runtime import get_runtime

    settings = get_runtime().settings
    with task_session() as session:
        secret = webhook_signing_secret(session, settings)
        delivery = session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == uuid.UUID(delivery_id)).with_for_update()
        )
        if delivery is None or delivery.status != "pending":
            return delivery.status if delivery else "missing"
        ok = attempt_delivery(session, delivery, secret, allow_private_hosts=settings.webhooks_may_reach_private_hosts)
        status, attempts = delivery.status, delivery.attempts
    if not ok and status == "pending" and not self.request.is_eager:
        raise self.retry(countdown=backoff_seconds(attempts))
    return status


def retry_due() -> int:
    """Beat safety net: re-send pending deliveries whose retry time passed (a lost task, or the
    in-process mode, which does not retry inline)."""
    with task_session() as session:
        due = session.scalars(
            select(WebhookDelivery.id).where(
                WebhookDelivery.status == "pending",
                # Overdue by a grace period, so this does not race Celery's own scheduled retry.
                WebhookDelivery.next_attempt_at <= clock.now() - RETRY_GRACE,
            ).limit(500)
        ).all()
    for delivery_id in due:
        enqueue(DELIVER, str(delivery_id))
    return len(due)


TASKS = (
    TaskSpec(DELIVER, deliver, bind=True, max_retries=MAX_ATTEMPTS),
    TaskSpec("webhooks.retry_due", retry_due),
)
BEAT = (BeatSpec("webhooks-retry-due", "webhooks.retry_due", 60.0),)
