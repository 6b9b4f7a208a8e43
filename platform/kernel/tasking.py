"""The Celery machinery and the rules every task follows. The kernel names no domain.

- Domains describe their tasks as plain data (`TaskSpec`, `BeatSpec`); importing a module
  registers nothing. The composition root of each process (marketplace.bootstrap) builds one
  Celery app from settings and every domain's specs, and installs it for this process
  (`install_celery`): `enqueue_after_commit` and `enqueue` send through that app, by task name.
- With a broker (`CELERY_BROKER_URL`, or `REDIS_URL`), tasks go to Celery workers.
  Without one, they run in-process right after the transaction commits (the embedded default;
  the start-up log says so).
- Tasks are sent only after the transaction that caused them commits (`enqueue_after_commit`),
  with ids, never objects, and each task opens its own unit of work (`task_session`).
- Tasks are idempotent and acknowledged late: when a worker's pool process dies mid-task, the
  worker hands the task back at once; when the whole worker dies, the broker redelivers it only
  after its visibility timeout (below), so long work needs its own lease (payouts/service/lease.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from celery import Celery, Task, current_task
from sqlalchemy import event
from sqlalchemy.orm import Session

from kernel import audit_log
from kernel.db import session_scope
from kernel.runtime import get_runtime
from kernel.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One Celery task, as a domain offers it: its name, the plain function that runs it, and
    the Celery options it needs (None: the app's default)."""

    name: str
    run: Callable[..., Any]
    bind: bool = False  # `run` gets the task instance first (for self.retry, self.request)
    max_retries: int | None = None
    acks_late: bool | None = None
    autoretry_for: tuple[type[BaseException], ...] = ()
    retry_backoff: float | None = None
    retry_backoff_max: float | None = None

    def options(self) -> dict[str, Any]:
        values = {
            "bind": self.bind, "max_retries": self.max_retries, "acks_late": self.acks_late,
            "autoretry_for": self.autoretry_for or None, "retry_backoff": self.retry_backoff,
            "retry_backoff_max": self.retry_backoff_max,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class BeatSpec:
    """One entry of the beat schedule: run `task` every `seconds`."""

    name: str
    task: str
    seconds: float
    args: tuple[Any, ...] = ()


class TasksNotInstalled(RuntimeError):
    """A task was sent in a process whose composition root installed no Celery app."""


class UnknownTask(RuntimeError):
    """A task name the installed Celery app does not know (a domain's spec is not wired)."""


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured from settings, with no task registered (a sender by name, or the
    base the composition root registers every task on)."""
    app = Celery("marketplace", broker=settings.broker_url or "memory://")
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
        # Redis redelivers an unacknowledged task after this long. It must outlast every countdown
        # (a task waiting for its ETA is unacknowledged too: webhook retries wait up to ~11 min,
        # payout retries 10) and every task's run, or those tasks run twice early; so an hour,
        # and a killed worker's payout batch resumes through its lease instead (payouts/service/lease.py).
        broker_transport_options={"visibility_timeout": 3600},
        timezone="UTC",
        enable_utc=True,
        beat_schedule={},
    )
    return app


def register_tasks(app: Celery, specs: Iterable[TaskSpec]) -> None:
    """Register each spec on `app` (on this app only: not a shared task every app would get)."""
    for spec in specs:
        if spec.name in app.tasks:
            raise ValueError(f"task {spec.name!r} is registered twice")
        app.task(spec.run, name=spec.name, shared=False, lazy=False, **spec.options())


def schedule_beat(app: Celery, entries: Iterable[BeatSpec]) -> None:
    """Set `app`'s beat schedule; every entry must name a task registered on `app`."""
    schedule: dict[str, dict[str, Any]] = {}
    for entry in entries:
        if entry.task not in app.tasks:
            raise UnknownTask(f"beat entry {entry.name!r} names {entry.task!r}, which is not registered")
        if entry.name in schedule:
            raise ValueError(f"beat entry {entry.name!r} is scheduled twice")
        schedule[entry.name] = {"task": entry.task, "schedule": entry.seconds, "args": entry.args}
    app.conf.beat_schedule = schedule


_installed: Celery | None = None


def install_celery(app: Celery | None) -> Celery | None:
    """Make `app` the Celery app this process sends tasks through (the composition root calls
    this; None uninstalls). Returns the app it replaced."""
    global _installed
    previous, _installed = _installed, app
    return previous


def installed_celery() -> Celery:
    """The Celery app the composition root installed in this process."""
    if _installed is None:
        raise TasksNotInstalled(
            "no Celery app is installed in this process: build one with marketplace.bootstrap "
            "(create_app, `celery -A marketplace.worker`, the `marketplace` CLI do)"
        )
    return _installed


def installed_task(task_name: str) -> Task:
    app = installed_celery()
    try:
        task: Task = app.tasks[task_name]
    except KeyError:
        raise UnknownTask(f"the installed Celery app has no task {task_name!r}") from None
    return task


@contextmanager
def task_session() -> Iterator[Session]:
    """The unit of work of one task run: committed when the task body returns. A run that changes
    something leaves a system event in the audit log (kernel.audit_log.watch_task)."""
    with session_scope(get_runtime().sessions) as session:
        task = current_task  # a proxy: false outside a task run (a beat job called as a function)
        if task and task.request.id is not None:
            audit_log.watch_task(session, task.name, tuple(task.request.args or ()))
        yield session


def enqueue(task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send a task now (from a task body or a sweep; in-process when no broker is configured)."""
    installed_task(task_name).apply_async(args=args, countdown=countdown)


def enqueue_after_commit(session: Session, task_name: str, *args: Any, countdown: float | None = None) -> None:
    """Send a task once `session` commits; a rollback sends nothing. A task name the installed
    app does not know (or no app at all) is an error now, before anything is committed."""
    task = installed_task(task_name)

    def _send(_session: Session) -> None:
        # apply_async runs the task in-process when no broker is configured (always-eager).
        # The transaction has already committed: a failure here (broker down, or the in-process
        # task raising) must not turn a stored change into an error response. Tasks are
        # idempotent and every one has a beat job that picks up what was missed.
        try:
            task.apply_async(args=args, countdown=countdown)
        except Exception:
            log.exception("task_after_commit_failed", task=task_name, args=args)

    event.listen(session, "after_commit", _send, once=True)
