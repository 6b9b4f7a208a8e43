"""The composition root: the one place that wires the domains into a process.

Importing a module of the kernel or a domain registers nothing. Each offers what it has as plain
data, and the functions here put it together for each process kind:

- tasks: every `tasks.py` lists its plain functions as `TaskSpec`s and its beat entries as
  `BeatSpec`s; `build_celery(settings)` registers all of them on one Celery app, and
  `process_celery` / `install_celery` make it the app this process sends tasks through.
  Used by `create_app` (the API), `marketplace.worker` (`celery -A marketplace.worker worker|beat`)
  and the CLI.
- Stripe webhook handlers: each domain's `STRIPE_HANDLERS` pairs, run by the inbox task.
- ledger audit checks: the kernel's and each domain's `AUDIT_CHECKS` pairs (`audit_ledger`).
- pluggable rules: the orders package's first-order check, which the affiliates package's
  commission preview needs but cannot import (`FIRST_ORDER_CHECK`, put on the API app).
"""

from __future__ import annotations

from celery import Celery
from sqlalchemy.orm import Session

from affiliates import stripe_events as affiliates_stripe_events
from affiliates import tasks as affiliates_tasks
from affiliates.service.commission import SessionFirstOrderCheck
from catalog import stripe_events as catalog_stripe_events
from kernel import ledger, mail, outbound, stripe_webhooks
from kernel import tasks as kernel_tasks
from kernel.ledger import AuditCheck, AuditFinding
from kernel.settings import Settings
from kernel.stripe_webhooks import StripeEventHandler, StripeHandlers
from kernel.tasking import (
    BeatSpec,
    TasksNotInstalled,
    TaskSpec,
    install_celery,
    installed_celery,
    make_celery,
    register_tasks,
    schedule_beat,
)
from orders import tasks as orders_tasks
from orders.service import audit as orders_audit
from orders.service import payments
from orders.service.queries import sellers_new_to_buyer
from payouts import tasks as payouts_tasks
from payouts.service import audit as payouts_audit

STRIPE_HANDLERS: tuple[tuple[str, StripeEventHandler], ...] = (
    *catalog_stripe_events.STRIPE_HANDLERS,
    *affiliates_stripe_events.STRIPE_HANDLERS,
    *payments.STRIPE_HANDLERS,
)

AUDIT_CHECKS: tuple[tuple[str, AuditCheck], ...] = (
    *ledger.AUDIT_CHECKS,
    *orders_audit.AUDIT_CHECKS,
    *payouts_audit.AUDIT_CHECKS,
)

FIRST_ORDER_CHECK: SessionFirstOrderCheck = sellers_new_to_buyer


def task_specs(handlers: StripeHandlers) -> tuple[TaskSpec, ...]:
    """Every task of the platform; the Stripe inbox task runs `handlers`."""
    return (
        *kernel_tasks.TASKS,
        *outbound.TASKS,
        *mail.TASKS,
        *stripe_webhooks.tasks(handlers),
        *affiliates_tasks.TASKS,
        *orders_tasks.TASKS,
        *payouts_tasks.TASKS,
    )


def beat_specs(settings: Settings) -> tuple[BeatSpec, ...]:
    """The whole beat schedule (payout batches on a schedule only when settings ask for them)."""
    return (
        *outbound.BEAT,
        *mail.BEAT,
        *stripe_webhooks.BEAT,
        *affiliates_tasks.BEAT,
        *orders_tasks.BEAT,
        *payouts_tasks.beat(settings),
    )


def build_celery(
    settings: Settings, *, in_process: bool = False, stripe_handlers: StripeHandlers | None = None
) -> Celery:
    """A Celery app with every task and the beat schedule registered. `in_process`: run tasks
    in this process even when settings name a broker (the demo). `stripe_handlers`: the inbox's
    handlers (default: every domain's, `STRIPE_HANDLERS`)."""
    app = make_celery(settings)
    if in_process:
        app.conf.task_always_eager = True
    register_tasks(app, task_specs(stripe_handlers or StripeHandlers(STRIPE_HANDLERS)))
    schedule_beat(app, beat_specs(settings))
    return app


def process_celery(settings: Settings) -> Celery:
    """The Celery app this process sends tasks through: the one already installed (the CLI's,
    the demo's, a test session's), else one built from `settings` and installed now."""
    try:
        return installed_celery()
    except TasksNotInstalled:
        app = build_celery(settings)
        install_celery(app)
        return app


def audit_ledger(session: Session) -> list[AuditFinding]:
    """Every ledger audit check of the platform (kernel, orders, payouts) on `session`."""
    return ledger.run_audit(session, AUDIT_CHECKS)


def audit_ledger_by_check(session: Session) -> list[tuple[str, list[AuditFinding]]]:
    """The same audit, check by check (each check's name and its findings, empty when it passed)."""
    return [(name, list(check(session))) for name, check in AUDIT_CHECKS]


def audit_check_names() -> list[str]:
    return [name for name, _ in AUDIT_CHECKS]
