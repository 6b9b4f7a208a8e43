"""`python -m loadtests.history_timings` times the reads that grow with history on a built history
(the figures in loadtests/README.md come from it)."""

from __future__ import annotations

import pytest

from loadtests.history import build_history
from loadtests.history_timings import measure
from tests.conftest import Backend


@pytest.mark.postgres_only
def test_history_timings_time_balances_preview_and_a_clean_audit_on_a_built_history(env: Backend) -> None:
    with env.runtime.engine.begin() as conn:
        written = build_history(conn, 50)
    assert written["orders"] == 50 and written["journal_entries"] == 50 * 11

    figures = measure(env.settings.database_url, repeat=1)

    assert figures["orders"] == 50 and figures["audit_exit"] == 0
    busiest = figures["busiest_payee_entries"]
    assert isinstance(busiest, int) and busiest >= 25 * 3  # half the orders pay the first seller, 3 entries each
    for key in ("platform_balances_ms", "payee_balance_ms", "payout_preview_ms", "audit_s", "audit_peak_rss_mb"):
        value = figures[key]
        assert isinstance(value, int | float) and value >= 0
