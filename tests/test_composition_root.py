"""One composition root (marketplace.bootstrap): importing a module registers nothing, and the root
wires everything the platform uses.

- In a fresh interpreter, importing every module of the kernel and the domains builds no Celery
  app, adds no shared task, installs nothing, and leaves no module-level container of functions
  (a registry) and no module-level slot rebound by a function (`global`) besides the two a
  composition root installs into (the runtime and the Celery app), both still empty.
- The root's Celery app knows every task name the code sends (read from the source), every beat
  entry runs a registered task, and every task list, Stripe handler list and audit check list a
  domain exports is wired.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from kernel.stripe_webhooks import StripeHandlers
from kernel.tasking import TasksNotInstalled, UnknownTask, enqueue_after_commit, install_celery, installed_celery
from marketplace import bootstrap
from tests.conftest import REPO_ROOT, make_settings

DOMAINS = ["kernel", "catalog", "affiliates", "orders", "payouts"]
EVERY_TASK = {
    "system.heartbeat", "webhooks.deliver", "webhooks.retry_due", "webhooks.handle_stripe_event",
    "webhooks.retry_unhandled", "affiliates.flush_clicks", "affiliates.flush_traffic", "orders.expire_unpaid",
    "orders.expire_approval_holds", "orders.release_matured", "orders.evaluate_partner_health",
    "orders.send_refund", "orders.retry_unsent_refunds", "payouts.run_batch", "payouts.recover_clawbacks",
    "payouts.reconcile", "payouts.create_scheduled", "payouts.resume_stalled", "mail.send", "mail.resend_unsent",
}
# The only module-level slots a function may rebind: what a composition root installs.
INSTALL_SLOTS = {"kernel.runtime._runtime", "kernel.tasking._installed"}

# Run in a fresh interpreter: import every module of the kernel and the domains, then report.
IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import celery._state as state
from celery import Celery
import celery.app.builtins

finalizers_before = len(state._on_app_finalizers)
modules = []
for package in %(domains)r:
    modules.append(importlib.import_module(package))
    for info in pkgutil.walk_packages(modules[-1].__path__, prefix=package + "."):
        modules.append(importlib.import_module(info.name))

def functions_in(value):
    items = value.values() if isinstance(value, dict) else value
    for item in items:
        for x in (item if isinstance(item, (list, tuple, set, frozenset)) else (item,)):
            if callable(x) and not isinstance(x, type):
                return True
    return False

registries = [f"{m.__name__}.{name}" for m in modules for name, value in vars(m).items()
              if isinstance(value, (dict, list, set)) and not name.startswith("__") and functions_in(value)]
slots = {name: getattr(sys.modules[name.rsplit(".", 1)[0]], name.rsplit(".", 1)[1]) is None
         for name in %(slots)r}
print(json.dumps({
    "modules": sorted(m.__name__ for m in modules), "celery_apps": len(list(state._apps)),
    "shared_tasks": len(state._on_app_finalizers) - finalizers_before, "registries": registries,
    "slots_empty": slots,
}))
"""


def _fresh_python(code: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO_ROOT / 'platform'}:{REPO_ROOT}"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    found: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def _names(value: object) -> set[str]:
    """A JSON list of names that `_fresh_python` printed, as a set."""
    assert isinstance(value, list) and all(isinstance(name, str) for name in value), value
    return set(value)


def _modules(packages: list[str]) -> Iterator[ModuleType]:
    for package in packages:
        module = importlib.import_module(package)
        yield module
        for info in pkgutil.walk_packages(module.__path__, prefix=package + "."):
            yield importlib.import_module(info.name)


def test_importing_every_module_of_the_kernel_and_the_domains_registers_nothing() -> None:
    found = _fresh_python(IMPORT_EVERYTHING % {"domains": DOMAINS, "slots": sorted(INSTALL_SLOTS)})

    assert {"kernel.tasking", "kernel.stripe_webhooks", "kernel.ledger", "orders.service.checkout",
            "affiliates.service.commission", "payouts.tasks", "orders.service.payments",
            "catalog.stripe_events"} <= _names(found["modules"])
    assert found["celery_apps"] == 0  # no app: no task registry, no beat schedule
    assert found["shared_tasks"] == 0  # and no @shared_task waiting for the next app
    assert found["registries"] == []  # no module-level dict/list/set of functions to register into
    assert found["slots_empty"] == dict.fromkeys(sorted(INSTALL_SLOTS), True)


def test_no_function_rebinds_module_state_besides_the_slots_a_composition_root_installs() -> None:
    rebound = set()
    for module in _modules(DOMAINS):
        tree = ast.parse(Path(module.__file__ or "").read_text())
        rebound |= {f"{module.__name__}.{name}" for node in ast.walk(tree) if isinstance(node, ast.Global)
                    for name in node.names}
    assert rebound == INSTALL_SLOTS


def _sent_task_names(module: ModuleType, *, literals_only: bool) -> Iterator[tuple[str, str]]:
    """(task name, where) for every task the module's source sends or looks up by name:
    enqueue_after_commit(session, NAME), enqueue(NAME), installed_task(NAME), send_task(NAME),
    .tasks[NAME]. A name that is not a literal is evaluated in the module's globals (constants)."""
    path = Path(module.__file__ or "")
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.expr):  # only calls and subscripts send or look up a task
            continue
        expr: ast.expr | None = None
        lookup = False  # `x.tasks[...]`: a Celery registry, or another `tasks` (Rich's progress bar)
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            position = {"enqueue_after_commit": 1, "enqueue": 0, "installed_task": 0, "send_task": 0}.get(func)
            if position is not None and len(node.args) > position:
                expr = node.args[position]
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "tasks":
            expr, lookup = node.slice, True
        if expr is None:
            continue
        where = f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            yield expr.value, where
        elif not literals_only:
            try:
                value = eval(compile(ast.Expression(expr), str(path), "eval"), vars(module))
            except NameError:  # a local: a parameter passed through (kernel.tasking's own functions)
                assert lookup or module.__name__ == "kernel.tasking", f"cannot tell which task {where} sends"
                continue
            assert isinstance(value, str), where
            yield value, where


def test_the_root_registers_every_task_the_code_sends_and_every_beat_entry_runs_one() -> None:
    app = bootstrap.build_celery(make_settings("sqlite://", None, payout_schedule_seconds=3600))
    registered = {name for name in app.tasks if not name.startswith("celery.")}
    sent = [*(pair for m in _modules([*DOMAINS, "marketplace"]) for pair in _sent_task_names(m, literals_only=False)),
            *(pair for m in _modules(["tests"]) if m.__name__ != __name__  # this one sends a wrong name on purpose
              for pair in _sent_task_names(m, literals_only=True))]

    assert registered == EVERY_TASK
    assert len(sent) > 20 and {"payouts.run_batch", "webhooks.deliver", "orders.send_refund"} <= {n for n, _ in sent}
    assert [(name, where) for name, where in sent if name not in registered] == []
    beat = app.conf.beat_schedule
    assert {entry["task"] for entry in beat.values()} <= registered
    assert beat["payouts-create-scheduled"]["schedule"] == 3600  # read from the settings given to the root
    assert "payouts-create-scheduled" not in bootstrap.build_celery(make_settings("sqlite://", None)).conf.beat_schedule
    run_batch = app.tasks["payouts.run_batch"]  # the spec's options reach Celery
    assert (run_batch.acks_late, run_batch.max_retries, run_batch.autoretry_for) == (True, 50, (OperationalError,))
    assert app.tasks["webhooks.deliver"].max_retries == 8 and app.tasks["orders.send_refund"].max_retries == 10


def test_every_task_list_stripe_handler_list_and_audit_check_list_a_domain_exports_is_wired() -> None:
    modules = list(_modules(DOMAINS))
    settings = make_settings("sqlite://", None, payout_schedule_seconds=60)
    app = bootstrap.build_celery(settings)
    exported_tasks = {spec.name for m in modules for spec in getattr(m, "TASKS", ())}
    exported_beat = {entry.name for m in modules for entry in getattr(m, "BEAT", ())}
    exported_handlers = [pair for m in modules for pair in getattr(m, "STRIPE_HANDLERS", ())]
    exported_checks = [pair for m in modules for pair in getattr(m, "AUDIT_CHECKS", ())]

    assert exported_tasks <= set(app.tasks) and exported_beat <= set(app.conf.beat_schedule)
    assert sorted(exported_handlers, key=repr) == sorted(bootstrap.STRIPE_HANDLERS, key=repr)
    wired = StripeHandlers(bootstrap.STRIPE_HANDLERS)
    assert wired.event_types() == {"account.updated", "payment_intent.succeeded", "payment_intent.payment_failed",
                                   "payment_intent.canceled", "refund.failed"}
    assert len(wired.for_type("account.updated")) == 2  # the catalog's sellers and the affiliates
    names = bootstrap.audit_check_names()
    assert len(names) == len(set(names)) == len(exported_checks) >= 12
    assert sorted(exported_checks, key=repr) == sorted(bootstrap.AUDIT_CHECKS, key=repr)


def test_the_worker_entry_point_builds_and_installs_the_full_app() -> None:
    found = _fresh_python(
        "import json\nimport marketplace.worker as worker\nfrom kernel.tasking import installed_celery\n"
        "print(json.dumps({'installed': installed_celery() is worker.app, 'tasks': sorted(worker.app.tasks),"
        " 'beat': sorted(e['task'] for e in worker.app.conf.beat_schedule.values())}))"
    )
    assert found["installed"] is True
    assert _names(found["tasks"]) >= EVERY_TASK
    assert _names(found["beat"]) <= EVERY_TASK


@pytest.fixture
def nothing_installed() -> Iterator[None]:
    previous = install_celery(None)
    yield
    install_celery(previous)


def test_sending_a_task_with_no_app_installed_is_a_clear_error_before_anything_commits(
    nothing_installed: None,
) -> None:
    with pytest.raises(TasksNotInstalled, match=r"marketplace\.bootstrap"):
        enqueue_after_commit(Session(), "system.heartbeat", "note")


def test_sending_a_task_the_installed_app_does_not_know_is_an_error_before_anything_commits() -> None:
    assert "system.heartbeat" in installed_celery().tasks
    with pytest.raises(UnknownTask, match=r"no\.such-task"):
        enqueue_after_commit(Session(), "no.such-task")
