"""Time the growth reports and the funnel on a database built by `loadtests.history`.

    python -m loadtests.growth_timings --database-url postgresql+psycopg://postgres@127.0.0.1:5432/db

Prints one JSON line: the median of `--repeat` calls (ms, in process, one session) of the growth
report for each group (a year, so the history's days are in it) and of the funnel for each group,
then the time of `marketplace growth rebuild --check` (s, in process: recompute from the orders,
compare with the kept rollups and the journal) and whether it agreed.
"""

from __future__ import annotations

import argparse
import json
import time

from sqlalchemy import text

from kernel.db import session_scope
from kernel.runtime import Runtime
from kernel.settings import Settings
from loadtests.timing import median_ms


def measure(database_url: str, repeat: int) -> dict[str, object]:
    from orders.service import funnel, reports, rollups

    settings = Settings(_env_file=None, database_url=database_url, environment="test")
    runtime = Runtime(settings)
    out: dict[str, object] = {}
    with session_scope(runtime.sessions) as session:
        out["orders"] = session.execute(text("SELECT count(*) FROM orders")).scalar_one()
        out["growth_daily_rows"] = session.execute(text("SELECT count(*) FROM growth_daily")).scalar_one()
        out["growth_customers"] = session.execute(text("SELECT count(*) FROM growth_customers")).scalar_one()
        for group_by in ("seller", "affiliate", "storefront", "program"):
            out[f"growth_{group_by}_ms"] = median_ms(
                lambda g=group_by: reports.growth(session, g, days=365), repeat)  # type: ignore[misc]
        for group_by in ("affiliate", "storefront", "program"):
            out[f"funnel_{group_by}_ms"] = median_ms(
                lambda g=group_by: funnel.funnel(session, g, days=365), repeat)  # type: ignore[misc]
        started = time.perf_counter()
        report = rollups.rebuild(session, write=False)
        out["rebuild_check_s"] = round(time.perf_counter() - started, 2)
        out["rebuild_agrees"] = report.agree
    runtime.close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="time the growth reports and the funnel")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.database_url, args.repeat)))


if __name__ == "__main__":
    main()
