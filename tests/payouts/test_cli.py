"""`marketplace payouts ...` on the embedded default: preview, create, approve (runs here with a
progress bar), status, list, reconcile; and the benchmark command on a small batch."""

from __future__ import annotations

import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from kernel.ledger import AFFILIATE, AVAILABLE, SELLER
from payouts.cli import app
from tests.conftest import Backend
from tests.payouts.conftest import audit, balance, credit, make_payee

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich sizes its console when created; a wide one keeps table cells on one line."""
    monkeypatch.setattr("payouts.cli.console", Console(width=200))


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False, terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_an_operator_previews_creates_approves_and_watches_a_batch_from_the_terminal(env: Backend) -> None:
    seller, affiliate = make_payee(env, SELLER, name="Acme Tools"), make_payee(env, AFFILIATE, name="Guild")
    credit(env, SELLER, seller, 5000)
    credit(env, AFFILIATE, affiliate, 2500)
    credit(env, SELLER, make_payee(env, SELLER, payout_status="onboarding"), 900)

    preview = invoke("preview", "--currency", "USD")
    created = invoke("create", "--currency", "USD")
    batch_id = re.search(r"batch ([0-9a-f-]{36}): awaiting_approval", created)
    assert batch_id, created
    approved = invoke("approve", batch_id.group(1))  # no broker: it runs here, with the bar
    status = invoke("status", batch_id.group(1))
    listed = invoke("list")
    reconciled = invoke("reconcile", batch_id.group(1))

    assert "Acme Tools" in preview and "2 payees" in preview and "1 blocked" in preview
    assert "75.00 USD" in preview
    assert "approved" in approved and "completed" in approved
    assert re.search(r"paid\s+│\s+2\s+│\s+75.00 USD", status), status
    assert batch_id.group(1) in listed and "2/2" in listed
    assert "reconciled: 2 paid items, 2 at the rail" in reconciled
    assert balance(env, SELLER, seller, AVAILABLE) == 0
    assert audit(env) == []


def test_running_a_batch_that_is_not_approved_says_so_and_moves_nothing(env: Backend) -> None:
    seller = make_payee(env, SELLER)
    credit(env, SELLER, seller, 5000)
    batch_id = re.search(r"batch ([0-9a-f-]{36})", invoke("create", "--currency", "USD"))
    assert batch_id

    output = invoke("run", batch_id.group(1))

    assert "awaiting_approval: nothing to run (approve it first)" in output
    assert balance(env, SELLER, seller, AVAILABLE) == 5000


def test_cli_errors_are_problems_not_tracebacks(env: Backend) -> None:
    result = runner.invoke(app, ["create", "--currency", "USD"], terminal_width=200)
    assert result.exit_code == 1
    # The title and the detail say it once each, in other words (not "No payee can be paid: no payee can be paid")
    assert "Nothing to pay: no USD balance can be paid now: 0 payee(s) below the minimum of 10.00 USD" in " ".join(
        result.output.split())
