"""`marketplace payouts ...`: an operator's payout run from the terminal.

    marketplace payouts preview --currency USD     who would be paid, who not and why
    marketplace payouts create --currency USD      a batch awaiting approval
    marketplace payouts approve BATCH_ID           approve it (and run it here, with a progress bar)
    marketplace payouts run BATCH_ID               run / resume it here (or --worker: enqueue and watch)
    marketplace payouts status BATCH_ID            counts and amounts per item state
    marketplace payouts list                       recent batches
    marketplace payouts reconcile BATCH_ID         compare the paid items with the rail
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from kernel.db import session_scope
from kernel.errors import AppError
from kernel.money import format_minor
from kernel.runtime import Runtime, get_runtime
from kernel.tasking import installed_celery
from payouts.models import BatchStatus, PayoutBatch
from payouts.service import planning, queries, reconcile, runner
from payouts.service.planning import Preview, PreviewLine
from payouts.service.queries import Progress as BatchProgress

app = typer.Typer(help="Payout batches: preview, create, approve, run, watch, reconcile.", no_args_is_help=True)
console = Console()
CLI_ACTOR = "cli"


def _runtime() -> Runtime:
    """This process's runtime (the one in-process tasks use too), from the environment."""
    return get_runtime()


def _tasks_in_process() -> bool:
    """True when enqueued tasks run right here (no broker): what the Celery app the process's
    composition root installed does."""
    return bool(installed_celery().conf.task_always_eager)


def _batch_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a batch id") from None


def _fail(exc: AppError) -> None:
    console.print(f"[red]{exc.title}:[/red] {exc.detail}")
    raise typer.Exit(1)


def _lines(title: str, lines: list[PreviewLine], currency: str, with_reason: bool) -> None:
    if not lines:
        return
    table = Table("payee", "name", Column("available", justify="right", no_wrap=True),
                  *(["why"] if with_reason else []), title=title, box=box.SIMPLE_HEAD, padding=(0, 1),
                  title_justify="left")
    for line in lines[:50]:
        table.add_row(line.owner_type, line.name or str(line.owner_id), format_minor(line.amount, currency),
                      *([line.reason or ""] if with_reason else []))
    if len(lines) > 50:
        table.caption = f"... and {len(lines) - 50} more"
    console.print(table)


def _print_plan(plan: Preview) -> None:
    _lines("would be paid", plan.payable, plan.currency, False)
    _lines("below the minimum", plan.below_minimum, plan.currency, True)
    _lines("blocked", plan.blocked, plan.currency, True)
    console.print(
        f"{plan.currency} on the {plan.rail} rail: [bold]{len(plan.payable)}[/bold] payees, "
        f"[bold]{format_minor(plan.total, plan.currency)}[/bold]; {len(plan.below_minimum)} below the minimum "
        f"of {format_minor(plan.minimum, plan.currency)}; {len(plan.blocked)} blocked"
    )


def _print_status(batch: PayoutBatch, progress: BatchProgress, out: Console | None = None) -> None:
    out = out or console
    out.print(f"batch [bold]{batch.id}[/bold]: {batch.currency}, {batch.rail} rail, [bold]{batch.status}[/bold]")
    table = Table("item state", "count", Column("amount", justify="right", no_wrap=True))
    for status, total in progress.by_status.items():
        table.add_row(status, str(total.count), format_minor(total.amount, batch.currency))
    out.print(table)


@app.command("preview")
def preview_cmd(currency: str = typer.Option(..., help="ISO 4217, e.g. USD")) -> None:
    """Who would be paid now, how much, who is below the minimum and who is blocked (nothing changes)."""
    runtime = _runtime()
    try:
        with session_scope(runtime.sessions) as session:
            plan = planning.preview(session, runtime.settings, runtime.rail.name, currency)
    except AppError as exc:
        _fail(exc)
    _print_plan(plan)


@app.command("create")
def create_cmd(currency: str = typer.Option(..., help="ISO 4217, e.g. USD")) -> None:
    """Create a batch for the currency (awaiting approval unless PAYOUT_AUTO_APPROVE)."""
    runtime = _runtime()
    try:
        with session_scope(runtime.sessions) as session:
            batch, plan = planning.create_batch(session, runtime.settings, runtime.rail.name, currency,
                                                created_by=CLI_ACTOR)
            batch_id, status = batch.id, batch.status
    except AppError as exc:
        _fail(exc)
    _print_plan(plan)
    console.print(f"batch [bold]{batch_id}[/bold]: {status}")


@app.command("approve")
def approve_cmd(
    batch_id: str,
    run: bool = typer.Option(True, help="without a broker: run the batch here right away, with a progress bar"),
) -> None:
    """Approve a batch. With a broker its run goes to the Celery workers; without one it runs here."""
    runtime = _runtime()
    here = _tasks_in_process()
    try:
        with session_scope(runtime.sessions) as session:
            planning.approve(session, _batch_id(batch_id), approved_by=CLI_ACTOR, enqueue=not here)
    except AppError as exc:
        _fail(exc)
    console.print(f"batch {batch_id} approved" + ("" if here else "; its run is queued for the workers"))
    if here and run:
        _run_or_exit(runtime, _batch_id(batch_id))


@app.command("run")
def run_cmd(
    batch_id: str,
    worker: bool = typer.Option(False, "--worker", help="enqueue the run for the Celery workers and watch it"),
) -> None:
    """Run (or resume) an approved batch in this process with a progress bar; safe beside workers."""
    runtime = _runtime()
    target = _batch_id(batch_id)
    if worker:
        if _tasks_in_process():
            console.print("[red]No broker configured[/red]: run without --worker")
            raise typer.Exit(2)
        try:
            with session_scope(runtime.sessions) as session:
                planning.request_run(session, target)
        except AppError as exc:
            _fail(exc)
        _watch(runtime, target, lambda: False, console)
        return
    _run_or_exit(runtime, target)


def _run_or_exit(runtime: Runtime, batch_id: uuid.UUID) -> None:
    try:
        run_batch_with_progress(batch_id, console, runtime)
    except AppError as exc:
        _fail(exc)


def run_batch_with_progress(
    batch_id: uuid.UUID, out: Console | None = None, runtime: Runtime | None = None, *,
    label: str | None = None, totals: bool = True,
) -> None:
    """Run (or resume) an approved batch in this process on a thread, drawing a Rich progress bar
    from the database (so it also counts what other workers do), until the batch is completed;
    items deferred after rail errors are retried when due. A completed batch just shows its totals.
    Used by `marketplace payouts run` and `marketplace demo` (which names the bar with `label` and
    prints its own totals: `totals=False`)."""
    runtime = runtime or get_runtime()
    out = out or console
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            while True:
                result = runner.run_batch(runtime, batch_id)
                outcome["result"] = result
                if result.retry_in is None:
                    return
                time.sleep(min(result.retry_in, 30.0) + 0.05)  # deferred items: wait for their retry
        except Exception as exc:  # shown after the bar closes
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"payout-run-{batch_id}", daemon=True)
    thread.start()
    _watch(runtime, batch_id, lambda: not thread.is_alive(), out, label=label, totals=totals)
    thread.join()
    error = outcome.get("error")
    if isinstance(error, Exception):
        raise error
    result = outcome.get("result")
    if isinstance(result, runner.RunResult) and result.status in ("awaiting_approval", "cancelled"):
        out.print(f"[yellow]batch {batch_id} is {result.status}: nothing to run[/yellow]"
                  + (" (approve it first)" if result.status == "awaiting_approval" else ""))


def _watch(
    runtime: Runtime, batch_id: uuid.UUID, stop: Callable[[], bool], out: Console, *,
    label: str | None = None, totals: bool = True,
) -> None:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("paid {task.fields[paid]}  failed {task.fields[failed]}  skipped {task.fields[skipped]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=out) as bar:
        task = bar.add_task(label or f"batch {str(batch_id)[:8]}", total=None, paid=0, failed=0, skipped=0)
        while True:
            with session_scope(runtime.sessions) as session:
                batch = queries.get_batch(session, batch_id)
                progress = queries.progress(session, [batch_id])[batch_id]
                status = batch.status
            counts = {s: progress.by_status[s].count for s in ("paid", "failed", "skipped")}
            bar.update(task, total=progress.total, completed=progress.done)
            bar.tasks[task].fields.update(counts)
            finished = status in (BatchStatus.COMPLETED, BatchStatus.CANCELLED, BatchStatus.AWAITING_APPROVAL)
            if finished or stop():
                break
            time.sleep(0.2)
    if not totals:
        return
    with session_scope(runtime.sessions) as session:
        batch = queries.get_batch(session, batch_id)
        _print_status(batch, queries.progress(session, [batch_id])[batch_id], out)


@app.command("status")
def status_cmd(batch_id: str) -> None:
    """A batch's status with counts and amounts per item state."""
    runtime = _runtime()
    try:
        with session_scope(runtime.sessions) as session:
            batch = queries.get_batch(session, _batch_id(batch_id))
            _print_status(batch, queries.progress(session, [batch.id])[batch.id])
    except AppError as exc:
        _fail(exc)


@app.command("list")
def list_cmd(limit: int = typer.Option(20, min=1, max=200)) -> None:
    """Recent batches, newest first."""
    runtime = _runtime()
    with session_scope(runtime.sessions) as session:
        batches = queries.list_batches(session, status=None, currency=None, after=None, limit=limit)[:limit]
        progress = queries.progress(session, [b.id for b in batches])
        table = Table(Column("batch", no_wrap=True, min_width=36), Column("status", no_wrap=True), "done",
                      Column("planned", justify="right", no_wrap=True), box=box.SIMPLE_HEAD, padding=(0, 1))
        for b in batches:
            p = progress[b.id]
            table.add_row(str(b.id), b.status, f"{p.done}/{p.total}",
                          format_minor(b.planned_amount, b.currency))
    console.print(table)


@app.command("reconcile")
def reconcile_cmd(batch_id: str) -> None:
    """Compare the batch's paid items with the rail now; exit 1 on a mismatch."""
    runtime = _runtime()
    try:
        found = reconcile.reconcile(runtime, _batch_id(batch_id))
    except AppError as exc:
        _fail(exc)
    if found.status == "ok":
        console.print(f"[green]reconciled[/green]: {found.paid_items} paid items, {found.rail_records} at the rail")
        return
    table = Table("kind", "item", "reference", "detail", title=f"{len(found.mismatches)} mismatch(es)")
    for m in found.mismatches:
        table.add_row(m["kind"], str(m["item_id"]), str(m["reference"]), m["detail"])
    console.print(table)
    raise typer.Exit(1)

