"""`marketplace growth ...`: rebuild the growth rollups from the orders and prove they agree."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from kernel.db import session_scope
from kernel.runtime import get_runtime
from orders.service import health, rollups

app = typer.Typer(help="Growth rollups (the reports' figures).", no_args_is_help=True)
console = Console(soft_wrap=True)


@app.command("rebuild")
def rebuild(
    check: bool = typer.Option(False, "--check", help="compare only: write nothing"),
) -> None:
    """Recompute the rollups from the orders (set-based SQL), list every difference from the kept
    rollups, replace them (unless --check), and check the sellers' totals against the journal to
    the minor unit. Exit 1 when the kept rollups differed or the journal disagrees."""
    started = time.perf_counter()
    with session_scope(get_runtime().sessions) as session:
        report = rollups.rebuild(session, write=not check)
    took = time.perf_counter() - started
    for line in report.differences:
        console.print(f"[yellow]differs[/yellow] {line}")
    for line in report.journal_mismatches:
        console.print(f"[red]journal[/red] {line}")
    verb = "checked" if check else "rebuilt"
    console.print(f"{verb} {report.rows} rollup rows and {report.customers} customers in {took:.2f} s: "
                  + ("[green]they agree with the orders and the journal[/green]" if report.agree
                     else f"{len(report.differences)} difference(s), {len(report.journal_mismatches)} "
                          "journal mismatch(es)"))
    if not report.agree:
        raise typer.Exit(1)


@app.command("health")
def health_now() -> None:
    """Evaluate partner health now (what the hourly beat task does): open the alarms the rollups
    show, once each, and announce them by webhook; list the alarms open afterwards."""
    runtime = get_runtime()
    with session_scope(runtime.sessions) as session:
        opened = len(health.evaluate(session, runtime.settings.operator_webhook_url))
        still_open = health.list_alarms(session, status="open", affiliate_ids=None)
        lines = [f"{alarm.rule:<22} {alarm.affiliate_id} {alarm.currency} {alarm.figures}" for alarm in still_open]
    for line in lines:
        console.print(line)
    console.print(f"{opened} alarm(s) opened now, {len(lines)} open")
