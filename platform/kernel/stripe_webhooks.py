"""Inbound Stripe webhooks: verify, store once in an inbox, handle once in a task.

1. `POST /v1/webhooks/stripe` verifies the `Stripe-Signature` header with
   `stripe.Webhook.construct_event` against settings.stripe_webhook_secret (or the Connect
   endpoint's secret, settings.stripe_connect_webhook_secret). A bad signature, or a signed
   timestamp older than settings.stripe_webhook_tolerance_seconds, is a 400 problem.
2. The event is inserted into `webhook_events` with `INSERT ... ON CONFLICT DO NOTHING` on
   UNIQUE(source, external_id): a replayed event id (Stripe redelivers, attackers replay) stores
   nothing and answers 200 `{"status": "duplicate"}`. Uniqueness is a property of the table, so
   two concurrent deliveries of one event cannot both be stored.
3. After the request commits, `webhooks.handle_stripe_event(inbox_id)` runs (a Celery task, or
   in-process when no broker is configured). It locks the inbox row, skips it if `handled_at` is
   set, runs every handler the composition root wired for the event type (`StripeHandlers`)
   inside a savepoint of its own unit of work, and sets `handled_at` in the same transaction as the
   handlers' writes: an event is handled once or not at all. A failing handler rolls back its
   writes; the error and attempt count are recorded and the task is retried.

Stripe only needs a quick 2xx; the work happens after the response.
"""

from __future__ import annotations

import enum
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import stripe
import structlog
from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import JSON, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id
from kernel.deps import DbSession, OperatorPrincipal, StrictQuery, get_settings
from kernel.errors import AppError, NotFound
from kernel.payment_rail import PaymentRail
from kernel.runtime import get_runtime
from kernel.schemas import Page, decode_cursor, encode_cursor, holds_nul
from kernel.settings import Settings
from kernel.tasking import BeatSpec, TaskSpec, enqueue, enqueue_after_commit, task_session

log = structlog.get_logger(__name__)

TASK_NAME = "webhooks.handle_stripe_event"
RETRY_TASK = "webhooks.retry_unhandled"
MAX_ATTEMPTS = 10
RETRY_BASE_SECONDS = 30  # doubles per attempt (30 s, 60 s, ... capped at an hour)
STALE_AFTER = timedelta(minutes=10)  # unhandled this long: the sweeper sends the task again


class WebhookSource(enum.StrEnum):
    STRIPE = "stripe"


class WebhookEvent(TimestampMixin, Base):
    """The inbox: one row per external event id per source, whatever happens to it afterwards.

    `created_at` is when we received it; `handled_at` is set in the transaction that ran its
    handlers (NULL: not handled yet, see `attempts` and `last_error`)."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("source", "external_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))  # Stripe: the event id `evt_...`
    type: Mapped[str] = mapped_column(String(100), index=True)
    account: Mapped[str | None] = mapped_column(String(64))  # the connected account, for Connect events
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    handled_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


# --- handlers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler works with, made by the task that runs it (the edge): the task's unit of
    work (flush, never commit) and this process's settings and payment rail."""

    session: Session
    settings: Settings
    rail: PaymentRail


StripeEventHandler = Callable[[HandlerContext, dict[str, Any]], None]


class StripeHandlers:
    """Which handlers run for which Stripe event type. Each domain exports its handlers as a plain
    tuple of `(event type, handler)` pairs; the composition root builds one of these from them
    and hands it to the task that handles stored events. Nothing registers itself on import.

    A handler `handler(context, event)` gets the verified event as Stripe sent it (a dict), runs
    inside the task's unit of work and must tolerate the event arriving out of order."""

    __slots__ = ("_by_type",)

    def __init__(self, pairs: Iterable[tuple[str, StripeEventHandler]] = ()) -> None:
        by_type: dict[str, list[StripeEventHandler]] = {}
        for event_type, handler in pairs:
            handlers = by_type.setdefault(event_type, [])
            if handler not in handlers:
                handlers.append(handler)
        self._by_type = {event_type: tuple(handlers) for event_type, handlers in by_type.items()}

    def for_type(self, event_type: str) -> tuple[StripeEventHandler, ...]:
        return self._by_type.get(event_type, ())

    def event_types(self) -> frozenset[str]:
        return frozenset(self._by_type)


# --- receiving ----------------------------------------------------------------------------------


class WebhookSignatureInvalid(AppError):
    status = 400
    type = "webhook-signature-invalid"
    title = "Webhook signature invalid"


class WebhookPayloadInvalid(AppError):
    status = 400
    type = "webhook-payload-invalid"
    title = "Webhook payload invalid"


class WebhooksNotConfigured(NotFound):
    type = "webhooks-not-configured"
    title = "Stripe webhooks are not configured"


def _secrets(settings: Settings) -> list[str]:
    return [
        secret.get_secret_value()
        for secret in (settings.stripe_webhook_secret, settings.stripe_connect_webhook_secret)
        if secret is not None
    ]


def _signed_at(signature: str) -> int | None:
    """The `t=` of a Stripe-Signature header (None when it has none that parses)."""
    for item in signature.split(","):
        name, _, value = item.partition("=")  # as the SDK reads it (no stripping)
        if name == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def verify_stripe_event(payload: bytes, signature: str | None, settings: Settings) -> dict[str, Any]:
    """The event if `signature` is Stripe's signature of `payload` with one of our endpoint secrets
    and its timestamp is within the tolerance, before or after now (the SDK checks only the
    past); raises a 400 problem otherwise, also for a signed body that is not a Stripe event (a
    JSON object with a string id and type, and no NUL anywhere: PostgreSQL stores none)."""
    secrets = _secrets(settings)
    if not secrets:
        raise WebhooksNotConfigured("this platform has no Stripe webhook secret (STRIPE_WEBHOOK_SECRET)")
    if not signature:
        raise WebhookSignatureInvalid("missing Stripe-Signature header")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookPayloadInvalid("the body is not UTF-8 JSON") from None
    tolerance = settings.stripe_webhook_tolerance_seconds
    failure = "signature does not match"
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
        except stripe.SignatureVerificationError as exc:
            failure = str(exc.user_message or exc)
            continue
        break
    else:
        raise WebhookSignatureInvalid(f"Stripe-Signature rejected: {failure}")
    signed_at = _signed_at(signature)
    if signed_at is None or signed_at > time.time() + tolerance:
        raise WebhookSignatureInvalid(f"Stripe-Signature rejected: timestamp {signed_at} is in the future")
    try:
        event = json.loads(text)
    except ValueError:
        raise WebhookPayloadInvalid("the body is not JSON") from None
    if not (isinstance(event, dict) and isinstance(event.get("id"), str) and isinstance(event.get("type"), str)):
        raise WebhookPayloadInvalid("a Stripe event is a JSON object with an id and a type")
    if holds_nul(event):
        raise WebhookPayloadInvalid("a Stripe event has no NUL (\\u0000) characters")
    return event


def store_event(session: Session, source: WebhookSource, event: dict[str, Any]) -> tuple[uuid.UUID, bool]:
    """Insert the event into the inbox once. Returns (inbox id, newly stored).

    ON CONFLICT DO NOTHING (PostgreSQL and SQLite alike) instead of catching IntegrityError: a
    concurrent duplicate waits for the first insert's transaction and then inserts nothing,
    without aborting ours."""
    values = {
        "id": new_id(), "source": source.value, "external_id": event["id"][:255], "type": event["type"][:100],
        "account": (event.get("account") or None), "payload": event, "attempts": 0, "created_at": clock.now(),
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(WebhookEvent).values(**values).on_conflict_do_nothing(
        index_elements=["source", "external_id"]
    ).returning(WebhookEvent.id)
    inserted = session.execute(stmt).scalar_one_or_none()
    if inserted is not None:
        return inserted, True
    existing = session.execute(
        select(WebhookEvent.id).where(
            WebhookEvent.source == source.value, WebhookEvent.external_id == values["external_id"]
        )
    ).scalar_one()
    return existing, False


# --- handling -----------------------------------------------------------------------------------


def handle_event(context: HandlerContext, handlers: StripeHandlers, inbox_id: uuid.UUID) -> str:
    """Run the handlers of one inbox event once, in `context.session`. Returns "handled", "already_handled", "missing"
    or "failed" (the error is recorded on the row, the handlers' writes are rolled back).

    Locks the inbox row (FOR UPDATE) so two workers given the same event (a duplicated task, the
    sweeper) run its handlers one after the other, and the second sees `handled_at`."""
    session = context.session
    row = session.get(WebhookEvent, inbox_id, with_for_update=True, populate_existing=True)
    if row is None:
        return "missing"
    if row.handled_at is not None:
        return "already_handled"
    row.attempts += 1
    try:
        with session.begin_nested():  # a failing handler takes back its own writes only
            for handler in handlers.for_type(row.type):
                handler(context, row.payload)
    except Exception as exc:
        row.last_error = f"{type(exc).__name__}: {exc}"[:4000]
        log.warning("stripe_event_failed", event_id=row.external_id, type=row.type, attempts=row.attempts,
                    error=row.last_error)
        return "failed"
    row.handled_at = clock.now()
    row.last_error = None
    return "handled"


def tasks(handlers: StripeHandlers) -> tuple[TaskSpec, ...]:
    """The inbox's tasks, handling events with `handlers` (the composition root passes every
    domain's)."""

    def handle_stripe_event(self: Any, inbox_id: str) -> str:
        """Handle one stored Stripe event (thin: the work is `handle_event`). Retried with backoff
        when a handler fails; in-process (no broker) the failure stays recorded for the sweeper or
        an operator."""
        runtime = get_runtime()
        with task_session() as session:
            context = HandlerContext(session=session, settings=runtime.settings, rail=runtime.rail)
            outcome = handle_event(context, handlers, uuid.UUID(inbox_id))
        if outcome == "failed" and not self.request.is_eager and self.request.retries < MAX_ATTEMPTS:
            raise self.retry(countdown=min(RETRY_BASE_SECONDS * 2**self.request.retries, 3600))
        return outcome

    return (
        TaskSpec(TASK_NAME, handle_stripe_event, bind=True, max_retries=MAX_ATTEMPTS),
        TaskSpec(RETRY_TASK, retry_unhandled),
    )


def retry_unhandled(limit: int = 200) -> int:
    """Send the task again for events left unhandled (a lost task, a worker killed before the
    retry was scheduled). Safe: handling is idempotent per event."""
    cutoff = clock.now() - STALE_AFTER
    with task_session() as session:
        ids = list(session.scalars(
            select(WebhookEvent.id).where(
                WebhookEvent.handled_at.is_(None), WebhookEvent.created_at <= cutoff,
                WebhookEvent.attempts < MAX_ATTEMPTS,
            ).order_by(WebhookEvent.id).limit(limit)
        ))
    for inbox_id in ids:
        enqueue(TASK_NAME, str(inbox_id))
    return len(ids)


BEAT = (BeatSpec("webhooks-retry-unhandled", RETRY_TASK, 300.0),)


# --- HTTP -----------------------------------------------------------------------------------------

router = APIRouter(tags=["webhooks"], dependencies=[StrictQuery])


async def raw_body(request: Request) -> bytes:
    """The exact bytes Stripe signed (a re-serialised JSON body would not verify)."""
    return await request.body()


class WebhookAck(BaseModel):
    status: Literal["received", "duplicate"]
    event_id: str = Field(description="Stripe's event id")


class WebhookEventOut(BaseModel):
    id: uuid.UUID
    source: str
    external_id: str
    type: str
    account: str | None
    created_at: datetime
    handled_at: datetime | None
    attempts: int
    last_error: str | None


@router.post(
    "/v1/webhooks/stripe", response_model=WebhookAck,
    responses={400: {"description": "bad signature, stale timestamp or not a Stripe event"},
               404: {"description": "this platform has no Stripe webhook secret (STRIPE_WEBHOOK_SECRET)"}},
)
def receive_stripe_webhook(
    session: DbSession,
    settings: Annotated[Settings, Depends(get_settings)],
    payload: Annotated[bytes, Depends(raw_body)],
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookAck:
    """Stripe calls this (no API key; the signature is the authentication). Stored once, handled
    once after the response by a background task; a replayed event id answers `duplicate`."""
    event = verify_stripe_event(payload, stripe_signature, settings)
    inbox_id, stored = store_event(session, WebhookSource.STRIPE, event)
    if stored:
        enqueue_after_commit(session, TASK_NAME, str(inbox_id))
        return WebhookAck(status="received", event_id=event["id"])
    log.info("stripe_event_duplicate", event_id=event["id"])
    return WebhookAck(status="duplicate", event_id=event["id"])


@router.get("/v1/webhooks/events", response_model=Page[WebhookEventOut])
def list_webhook_events(
    session: DbSession,
    principal: OperatorPrincipal,
    unhandled: Annotated[bool, Query(description="only events whose handlers have not succeeded")] = False,
    type: Annotated[str | None, Query(max_length=100, description="event type, e.g. account.updated")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[WebhookEventOut]:
    """Operator: the inbox, oldest first (received events, their attempts and last error)."""
    stmt = select(WebhookEvent).order_by(WebhookEvent.id).limit(limit + 1)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(WebhookEvent.id > after)
    if unhandled:
        stmt = stmt.where(WebhookEvent.handled_at.is_(None))
    if type:
        stmt = stmt.where(WebhookEvent.type == type)
    rows = list(session.scalars(stmt))
    items = [WebhookEventOut.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return Page(items=items, next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None)


@router.post("/v1/webhooks/events/{event_id}/retry", response_model=WebhookEventOut, status_code=202)
def retry_webhook_event(event_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> WebhookEventOut:
    """Operator: run an unhandled event's handlers again (after fixing what made them fail)."""
    row = session.get(WebhookEvent, event_id)
    if row is None:
        raise NotFound(f"no webhook event {event_id}")
    if row.handled_at is None:
        enqueue_after_commit(session, TASK_NAME, str(row.id))
    return WebhookEventOut.model_validate(row, from_attributes=True)
