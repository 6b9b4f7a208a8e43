"""The audit log: who changed what, append-only like the journal (the ORM refuses updates and
deletes here, a trigger does on PostgreSQL: migrations/versions/0014_people.py).

Every state-changing API request that succeeds records one event, written in the request's own
transaction (kernel.deps records it as the request's unit of work closes, so a failed request
records nothing and a recorded event always describes a stored change): who (the person, or the
organization key), for which organization, the operation (action), the object (the row a create
made, else the object the path names), the fields sent (secrets redacted), the caller's address,
user agent and request id. Services and
tasks add richer events with `record` (an invitation accepted, a member removed).

Operators read everything; an organization's owners and admins read their own organization's.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import JSON, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from starlette.requests import Request

from kernel.auth import Principal
from kernel.client import client_address
from kernel.clock import clock
from kernel.db import Base, new_id
from kernel.errors import AppError
from kernel.permissions import READ_ONLY_WRITES
from kernel.schemas import decode_cursor, encode_cursor


class AuditLogAppendOnly(AppError):
    status = 500
    type = "audit-log-append-only"
    title = "The audit log is append-only"


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)  # time-ordered: the cursor
    occurred_at: Mapped[datetime] = mapped_column(default=lambda: clock.now(), index=True)
    # Who: a person (with the key they used), an organization key, or the system (a task).
    actor_type: Mapped[str] = mapped_column(String(16))  # person | organization_key | system | anonymous
    person_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    api_key_id: Mapped[uuid.UUID | None] = mapped_column()
    session_id: Mapped[uuid.UUID | None] = mapped_column()  # a browser session's (kernel.sessions)
    organization_kind: Mapped[str | None] = mapped_column(String(16))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    # What.
    action: Mapped[str] = mapped_column(String(120), index=True)
    object_type: Mapped[str | None] = mapped_column(String(60))
    object_id: Mapped[str | None] = mapped_column(String(200), index=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Where from.
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    request_id: Mapped[str | None] = mapped_column(String(64))


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _refuse_edits(*_args: Any) -> None:
    raise AuditLogAppendOnly("the audit log is append-only")


_SECRET = re.compile(r"password|secret|token|api_?key|^key$|bank|iban|account_number|totp|otp", re.IGNORECASE)
_MAX_VALUE = 200


def redact(fields: Any) -> dict[str, Any]:
    """The fields a request sent, fit for the log: secrets replaced, long values cut, nested
    objects summarised (the object's own history is in its domain tables)."""
    if not isinstance(fields, Mapping):
        return {}
    out: dict[str, Any] = {}
    for name, value in list(fields.items())[:50]:
        key = str(name)[:60]
        if _SECRET.search(key):
            out[key] = "[redacted]"
        elif value is None or isinstance(value, bool | int | float):
            out[key] = value
        elif isinstance(value, str):
            out[key] = value if len(value) <= _MAX_VALUE else value[:_MAX_VALUE] + "…"
        elif isinstance(value, list):
            out[key] = f"[{len(value)} item(s)]"
        else:
            out[key] = "{…}"
    return out


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from (empty for tasks)."""

    address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


_NO_ORIGIN = Origin()


def record(
    session: Session, *, action: str, principal: Principal | None = None, object_type: str | None = None,
    object_id: object = None, changes: Mapping[str, Any] | None = None, origin: Origin = _NO_ORIGIN,
    person_id: uuid.UUID | None = None, organization: tuple[str, uuid.UUID] | None = None,
    actor_type: str | None = None,
) -> AuditEvent:
    """Add one event to `session` (the caller's transaction). `principal`: the caller (None: the
    system or an anonymous caller, then `person_id`/`organization` may say who and for whom)."""
    if principal is not None:
        person_id = principal.person_id
        organization = (principal.role.value, principal.organization_id)
        actor_type = "person" if principal.person_id is not None else "organization_key"
    row = AuditEvent(
        id=new_id(), occurred_at=clock.now(),
        actor_type=actor_type or ("person" if person_id is not None else "system"),
        person_id=person_id,
        api_key_id=principal.key_id if principal is not None and principal.session_id is None else None,
        session_id=principal.session_id if principal is not None else None,
        organization_kind=organization[0] if organization else None,
        organization_id=organization[1] if organization else None,
        action=action[:120], object_type=object_type, object_id=None if object_id is None else str(object_id)[:200],
        changes=redact(changes or {}), address=origin.address, user_agent=(origin.user_agent or "")[:300] or None,
        request_id=origin.request_id,
    )
    session.add(row)
    return row


def _singular(segment: str) -> str:
    word = segment.replace("-", "_")
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def object_of(path: str, path_params: Mapping[str, Any], principal: Principal | None) -> tuple[str | None, str | None]:
    """The object an operation acts on, from its path template: the last path parameter
    (`/v1/sub-orders/{sub_order_id}/ship` -> sub_order, its id), `me` (the caller's organization),
    else the collection (`/v1/products` -> product, id unknown)."""
    segments = [s for s in path.split("/") if s and s != "v1"]
    for index in range(len(segments) - 1, -1, -1):
        segment = segments[index]
        if segment.startswith("{"):
            name = segment.strip("{}")
            kind = name[:-3] if name.endswith("_id") else _singular(segments[index - 1]) if index else name
            return kind, str(path_params.get(name, "")) or None
        if segment == "me" and principal is not None:
            return principal.role.value, str(principal.organization_id)
    return (_singular(segments[0]) if segments else None), None


def operation_name(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class RequestAudit:
    """The audit event one request will record if it succeeds. A handler may say more about who
    acted or what it made (`actor`, `object`): the object is shared with the handler's thread."""

    request: Request
    action: str
    origin: Origin
    person_id: uuid.UUID | None = None
    organization: tuple[str, uuid.UUID] | None = None
    object_type: str | None = None
    object_id: object = None
    created: list[tuple[str, object]] = field(default_factory=list)  # (table, id) of rows the request inserted

    @classmethod
    def start(cls, request: Request, path: str, session: Session) -> RequestAudit:
        origin = Origin(
            # the client's address by kernel.client's rule (a trusted proxy's X-Forwarded-For), not the peer's
            address=client_address(request.scope, request.app.state.runtime.settings.trusted_proxies),
            user_agent=request.headers.get("user-agent"),
            request_id=structlog.contextvars.get_contextvars().get("request_id"),
        )
        audit = cls(request, operation_name(request.method, path), origin)
        if audit.is_write:
            # What a create made: the rows flushed through this request's session (a create names
            # its new object, not only the collection it went into).
            @event.listens_for(session, "before_flush")
            def _created(sess: Session, _context: Any, _instances: Any) -> None:
                audit.created.extend((getattr(obj, "__tablename__", ""), getattr(obj, "id", None))
                                     for obj in sess.new if not isinstance(obj, AuditEvent))

        return audit

    def _created_object(self, path: str) -> tuple[str, str] | None:
        """For `POST /v1/products` or `POST /v1/orders/{order_id}/refunds`: the new row of the
        collection the path ends in (`product`, `refund`), if the request inserted one."""
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if self.request.method != "POST" or not last.endswith("s") or last.startswith("{"):
            return None  # an action (`/ship`, `/run`) or a change to an object named in the path
        wanted = _singular(last)
        for table, object_id in self.created:
            name = _singular(table)
            if object_id is not None and (name == wanted or name.endswith("_" + wanted)):
                return wanted, str(object_id)
        return None

    def actor(self, person_id: uuid.UUID | None, organization: tuple[str, uuid.UUID] | None) -> None:
        self.person_id = person_id
        self.organization = organization

    def object(self, object_type: str, object_id: object) -> None:
        self.object_type = object_type
        self.object_id = object_id

    @property
    def is_write(self) -> bool:
        return self.request.method not in SAFE_METHODS and self.action not in READ_ONLY_WRITES

    async def finish(self, session: Session, principal: Principal | None) -> None:
        """Record the event of a write that succeeded (the caller runs this only then)."""
        if not self.is_write:
            return
        path = getattr(self.request.scope.get("route"), "path", "")
        object_type, object_id = self._created_object(path) or object_of(path, self.request.path_params, principal)
        if self.object_type is not None:
            object_type, object_id = self.object_type, None if self.object_id is None else str(self.object_id)
        body: Any = None
        if "_body" in self.request.__dict__:  # only what the handler's body parameter already read
            try:
                body = await self.request.json()
            except ValueError:
                body = None
        record(session, action=self.action, principal=principal, object_type=object_type, object_id=object_id,
               changes=body if isinstance(body, dict) else {}, origin=self.origin, person_id=self.person_id,
               organization=self.organization,
               actor_type=None if principal is not None or self.person_id is not None else "anonymous")


# --- tasks -------------------------------------------------------------------------------------


def watch_task(session: Session, task_name: str, args: tuple[Any, ...]) -> None:
    """Record one system event for a task run whose unit of work changed something (rows flushed
    or bulk-updated), in that same transaction just before it commits. A run that only read, or
    found nothing to do, records nothing."""
    changed = [False]

    @event.listens_for(session, "before_flush")
    def _flushing(sess: Session, _context: Any, _instances: Any) -> None:
        if any(not isinstance(obj, AuditEvent) for obj in (*sess.new, *sess.dirty, *sess.deleted)):
            changed[0] = True

    @event.listens_for(session, "do_orm_execute")
    def _executing(state: Any) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            changed[0] = True

    @event.listens_for(session, "before_commit")
    def _committing(sess: Session) -> None:
        sess.flush()  # what is still pending counts too
        if not changed[0]:
            return
        changed[0] = False  # one event per unit of work
        record_task(sess, task_name, args)
        sess.flush()


def record_task(session: Session, task_name: str, args: tuple[Any, ...],
                outcome: Mapping[str, Any] | None = None) -> AuditEvent:
    """One system event for a task run: its name, its first arguments, and (for a task whose work
    commits in many transactions of its own, like a payout run) what it did."""
    ids = [str(arg) for arg in args if isinstance(arg, str | uuid.UUID | int)][:5]
    changes: dict[str, Any] = {"args": ", ".join(ids)} if ids else {}
    return record(session, action=f"task {task_name}", object_type="task", object_id=ids[0] if ids else None,
                  changes={**changes, **(outcome or {})}, actor_type="system")


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    organization_id: uuid.UUID | None = None
    object_type: str | None = None
    object_id: str | None = None
    person_id: uuid.UUID | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _query(flt: AuditFilter) -> Any:
    stmt = select(AuditEvent)
    if flt.organization_id is not None:
        stmt = stmt.where(AuditEvent.organization_id == flt.organization_id)
    if flt.object_type is not None:
        stmt = stmt.where(AuditEvent.object_type == flt.object_type)
    if flt.object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == flt.object_id)
    if flt.person_id is not None:
        stmt = stmt.where(AuditEvent.person_id == flt.person_id)
    if flt.action is not None:
        stmt = stmt.where(AuditEvent.action == flt.action)
    if flt.since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= flt.since)
    if flt.until is not None:
        stmt = stmt.where(AuditEvent.occurred_at < flt.until)
    return stmt


def scoped_filter(principal: Principal, flt: AuditFilter) -> AuditFilter:
    """Operators read every organization's events; anyone else only their own organization's."""
    if principal.is_operator:
        return flt
    return AuditFilter(principal.organization_id, flt.object_type, flt.object_id, flt.person_id, flt.action,
                       flt.since, flt.until)


def list_page(
    session: Session, flt: AuditFilter, *, cursor: str | None, limit: int
) -> tuple[list[AuditEvent], str | None]:
    """Newest first."""
    stmt = _query(flt).order_by(AuditEvent.id.desc()).limit(limit + 1)
    before = decode_cursor(cursor)
    if before is not None:
        stmt = stmt.where(AuditEvent.id < before)
    rows = list(session.scalars(stmt))
    return rows[:limit], encode_cursor(rows[limit - 1].id) if len(rows) > limit else None


CSV_COLUMNS = ("id", "occurred_at", "actor_type", "person_id", "api_key_id", "session_id", "organization_kind",
               "organization_id", "action", "object_type", "object_id", "changes", "address", "user_agent",
               "request_id")
EXPORT_LIMIT = 100_000


def iter_csv(session: Session, flt: AuditFilter) -> Iterable[str]:
    """The filtered log as CSV, oldest first, in chunks (cells that a spreadsheet would run as a
    formula are prefixed with a quote)."""
    import json

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    after: uuid.UUID | None = None
    exported = 0
    while exported < EXPORT_LIMIT:
        stmt = _query(flt).order_by(AuditEvent.id).limit(1000)
        if after is not None:
            stmt = stmt.where(AuditEvent.id > after)
        rows = list(session.scalars(stmt))
        if not rows:
            break
        for row in rows:
            cells = [getattr(row, column) for column in CSV_COLUMNS]
            writer.writerow([_cell(json.dumps(c, sort_keys=True) if isinstance(c, dict) else c) for c in cells])
        exported += len(rows)
        after = rows[-1].id
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
