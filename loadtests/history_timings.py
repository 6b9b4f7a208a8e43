"""Time the reads that grow with history, on a database built by `loadtests.history`.

    python -m loadtests.history_timings --database-url postgresql+psycopg://postgres@127.0.0.1:5432/db

Prints one JSON line: the median of `--repeat` calls (ms) of the platform balances, the busiest
payee's balance (the payee with the most journal entries, found before timing), the manual
payout preview and list pages as their routes build them (a page of 50 of the busiest and of the
quietest seller's sub-orders, the busiest seller's page from the middle of its history, a page
of the busiest affiliate's commissions), all in-process on one session; then `marketplace ledger
audit` as a subprocess, its wall time (s), exit status and peak RSS (MB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from functools import partial
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from kernel.auth import Principal, Role
from kernel.db import session_scope
from kernel.runtime import Runtime
from kernel.schemas import encode_cursor
from kernel.settings import Settings
from loadtests.timing import median_ms

ROOT = Path(__file__).resolve().parent.parent


def measure(database_url: str, repeat: int) -> dict[str, object]:
    from orders.service.queries import payee_balances, platform_balances
    from payouts.service.planning import preview

    settings = Settings(_env_file=None, database_url=database_url, environment="test")
    runtime = Runtime(settings)
    out: dict[str, object] = {}
    with session_scope(runtime.sessions) as session:
        out["orders"] = session.execute(text("SELECT count(*) FROM orders")).scalar_one()
        out["journal_entries"] = session.execute(text("SELECT count(*) FROM journal_entries")).scalar_one()
        owner_type, owner_id, entries = session.execute(text(
            "SELECT owner_type, owner_id, count(*) FROM journal_entries WHERE owner_id IS NOT NULL "
            "GROUP BY owner_type, owner_id ORDER BY count(*) DESC LIMIT 1")).one()
        out["busiest_payee_entries"] = entries
        out["platform_balances_ms"] = median_ms(lambda: platform_balances(session), repeat)
        out["payee_balance_ms"] = median_ms(lambda: payee_balances(session, owner_type, owner_id), repeat)
        out["payout_preview_ms"] = median_ms(lambda: preview(session, settings, "manual", "USD"), repeat)
        out.update(_list_pages(session, repeat))
    runtime.close()
    env = {**os.environ, "DATABASE_URL": database_url,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "platform"), str(ROOT)])}
    started = time.perf_counter()
    audit = subprocess.run([sys.executable, "-m", "marketplace.cli", "ledger", "audit"], env=env,
                           capture_output=True, text=True, check=False)
    out["audit_s"] = round(time.perf_counter() - started, 2)
    out["audit_exit"] = audit.returncode
    out["audit_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return out


def _list_pages(session: Session, repeat: int) -> dict[str, float]:
    """The list routes' handlers, called as FastAPI calls them (newest first, 50 a page)."""
    from orders import api

    out: dict[str, float] = {}
    by_seller = session.execute(text(
        "SELECT seller_id, count(*) FROM sub_orders GROUP BY seller_id ORDER BY count(*) DESC")).all()
    if by_seller:
        (busy, rows), (quiet, _) = by_seller[0], by_seller[-1]
        middle = session.execute(text("SELECT id FROM sub_orders WHERE seller_id = :s ORDER BY id DESC "
                                      "OFFSET :n LIMIT 1"), {"s": busy, "n": rows // 2}).scalar_one()
        for name, seller, cursor in (("busy", busy, None), ("quiet", quiet, None), ("busy_deep", busy, middle)):
            out[f"sub_orders_page_{name}_ms"] = median_ms(
                partial(api.list_sub_orders, session, Principal(uuid.uuid4(), Role.SELLER, seller), None,
                        encode_cursor(cursor) if cursor else None, 50), repeat)
    affiliate = session.execute(text(
        "SELECT affiliate_id FROM commissions GROUP BY affiliate_id ORDER BY count(*) DESC LIMIT 1")).scalar()
    if affiliate is not None:
        who = Principal(uuid.uuid4(), Role.AFFILIATE, affiliate)
        out["commissions_page_ms"] = median_ms(lambda: api.list_commissions(session, who, None, None, 50), repeat)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="time the reads that grow with history")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.database_url, args.repeat)))


if __name__ == "__main__":
    main()
