"""`marketplace ledger audit` as a person reads it: the findings as a table, exit status 1 on any."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from kernel.db import session_scope
from kernel.runtime import Runtime

console = Console()


def run_ledger_audit(runtime: Runtime) -> int:
    from marketplace.bootstrap import audit_check_names, audit_ledger

    with session_scope(runtime.sessions) as session:
        findings = audit_ledger(session)
    if not findings:
        console.print(f"[green]ledger audit clean[/green]: {len(audit_check_names())} checks passed")
        return 0
    table = Table("check", "finding", title=f"ledger audit: {len(findings)} finding(s)")
    for finding in findings:
        table.add_row(finding.check, finding.detail)
    console.print(table)
    return 1
