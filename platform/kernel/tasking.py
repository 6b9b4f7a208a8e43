"""The Celery application, wired from settings, and the rules every task follows.

- With a broker (`CELERY_BROKER_URL`, or `REDIS_URL`), tasks go to Celery workers.
  Without one, they run in-process right after the transaction commits (the embedded default;
  the start-up log says so).
- Tasks are sent only after the transaction that caused them commits (`enqueue_after_commit`),
  with ids, never objects, and each task opens its own unit of work (`task_session`).
- Tasks are idempotent and acknowledged late: a worker killed mid-task has its task redelivered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from celery import Celery, current_task
from sqlalchemy import event
from sqlalchemy.orm import Session

from kernel import audit_log
from kernel.db import session_scope
from kernel.runtime import get_runtime
from kernel.settings import Settings, get_settings

log = structlog.get_logger(__name__)

TASK_MODULES = [
    "affiliates.tasks",  # click counter flush (beat), affiliate account.updated handler
    "kernel.tasks",
    "kernel.outbound",
    "kernel.mail",  # the email outbox: send, and re-send what is unsent (beat)
    "orders.tasks",
    "orders.payments",  # payment_intent.* handlers for the webhook inbox
    "kernel.stripe_webhooks",
    "catalog.stripe_events",  # account.updated handler for the webhook inbox
    "payouts.tasks",  # batch runs, reconciliation, scheduled batches (beat)
]


def make_celery(settings: Settings) -> Celery:
    app = Celery("marketplace", broker=settings.broker_url or "memory://", include=TASK_MODULES)
    app.conf.update(
        task_always_eager=settings.tasks_run_in_process,
        task_eager_propagates=True,
        task_serializer="json",
        accept_content=["json"],
        result_backend=settings.celery_result_backend,
        task_ignore_result=settings.celery_result_backend is None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        timezone="UTC",
        enable_utc=True,
        beat_schedule={},
    )
    return app


celery_app = make_celery(get_settings())


def register_beat(name: str, task: str, seconds: float, args: tuple[Any, ...] = ()) -> None:
    celery_app.conf.beat_schedule[name] = {"task": task, "schedule": seconds, "args": args}


@contextmanager
def task_session() -> Iterator[Session]:
    """The unit of work of one task run: committed when the task body returns. A run that changes
    something leaves a system event in the audit log (kernel.audit_log.watch_task)."""
    with session_scope(get_runtime().sessions) as session:
        task = current_task  # a proxy: false outside a task run (a beat job called as a function)
        if task and task.request.id is not None:
            audit_log.watch_task(session, task.name, tuple(task.request.args or ()))
        yield session


def enqueue_after_commit(session: Session, task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send a task once `session` commits; a rollback sends nothing."""

    def _send(_session: Session) -> None:
        # apply_async runs the task in-process when no broker is configured (always-eager).
        # The transaction has already committed: a failure here (broker down, or the in-process
        # task raising) must not turn a stored change into an error response. Tasks are
        # idempotent and every one has a beat job that picks up what was missed.
        try:
            celery_app.tasks[task_name].apply_async(args=args, countdown=countdown)
        except Exception:
            log.exception("task_after_commit_failed", task=task_name, args=args)

    event.listen(session, "after_commit", _send, once=True)
