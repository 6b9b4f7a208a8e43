"""The payout benchmark: a batch of N synthetic payees, created, run and audited, timed.

Run `python -m loadtests.payout_bench --payees 10000`; the slow test uses it too. It needs an empty scratch database (it
writes synthetic sellers and journal credits); by default a new SQLite file. Balances are
written in bulk: one balanced journal transaction per 1,000 payees (credit each payee's
`available`, debit platform `clearing`), so seeding 10,000 payees is 20 INSERT statements.
"""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, insert, select

from kernel import ledger
from kernel.db import new_id, session_scope
from kernel.ledger import AVAILABLE, CLEARING, PLATFORM, SELLER, AuditFinding, Posting
from kernel.runtime import Runtime, get_runtime, set_runtime
from kernel.settings import Settings, get_settings
from marketplace.bootstrap import audit_ledger, build_celery
from marketplace.migrate import upgrade
from payouts.service import planning, runner

SEED_CHUNK = 1000


@dataclass
class BenchReport:
    database: str
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    paid: int = 0
    findings: list[AuditFinding] = field(default_factory=list)
    run_cpu_seconds: float = 0.0


def seed_sellers(runtime: Runtime, count: int, currency: str = "USD", *, rail: str = "manual",
                 accounts: list[str] | None = None, amount: Callable[[int], int] | None = None) -> list[uuid.UUID]:
    """`count` approved sellers with payouts enabled and an available balance each (minor units,
    `amount(i)`, default 10,000 + i). `accounts`: Stripe account ids to use (Stripe rail)."""
    from catalog.models import Seller

    ids = [new_id() for _ in range(count)]
    pay = amount or (lambda i: 10_000 + i)
    with session_scope(runtime.sessions) as session:
        tag = uuid.uuid4().hex[:8]
        rows = [
            {"id": seller_id, "name": f"Bench seller {i}", "email": f"bench-{tag}-{i}@example.com",
             "description": "", "status": "approved", "payout_status": "payouts_enabled",
             "stripe_account_id": accounts[i] if accounts else None,
             "bank_reference": None if rail == "stripe" else f"IBAN BENCH {i:08d}"}
            for i, seller_id in enumerate(ids)
        ]
        for start in range(0, count, SEED_CHUNK):
            session.execute(insert(Seller), rows[start:start + SEED_CHUNK])
        for start in range(0, count, SEED_CHUNK):
            part = list(enumerate(ids))[start:start + SEED_CHUNK]
            credits = [Posting(SELLER, seller_id, AVAILABLE, pay(i)) for i, seller_id in part]
            ledger.post(
                session, kind="bench.credit", reference_type="bench", reference_id=new_id(), currency=currency,
                postings=[*credits, Posting(PLATFORM, None, CLEARING, -sum(p.amount for p in credits))],
            )
    return ids


DEFAULT_CHUNK = 2000  # items per transaction: the run's steps are set-based, so bigger chunks amortise


def run(*, payees: int, database_url: str | None, workers: int = 1, chunk: int = DEFAULT_CHUNK,
        log: Callable[[str], None] = print, settings: Settings | None = None) -> BenchReport:
    """Seed, create, run (on `workers` threads) and audit one batch; every step timed."""
    import marketplace.models  # noqa: F401  (every table)
    from catalog.models import Seller

    base = settings or get_settings()
    scratch = None
    if database_url is None:
        scratch = tempfile.mkdtemp(prefix="payout-bench-")
        database_url = f"sqlite:///{Path(scratch) / 'bench.db'}"
    settings = base.model_copy(update={
        "database_url": database_url, "stripe_api_key": None, "payout_chunk_size": chunk,
        "payout_minimum_minor": 100, "payout_auto_approve": False, "payout_rail_pause_seconds": 0.0,
        "payout_export_dir": scratch or base.payout_export_dir, "db_pool_size": max(workers + 2, 5),
    })
    upgrade(database_url)
    runtime = Runtime(settings)
    previous = get_runtime()
    set_runtime(runtime)  # tasks enqueued in-process (the reconciliation) use this database
    report = BenchReport(database="sqlite" if settings.is_sqlite else "postgresql")
    try:
        with session_scope(runtime.sessions) as session:
            if session.scalar(select(func.count()).select_from(Seller)):
                raise SystemExit(f"{database_url.split('@')[-1]} already has sellers: give the bench an empty database")
        step = time.perf_counter()
        seed_sellers(runtime, payees)
        report.timings["seed balances"] = time.perf_counter() - step
        log(f"seeded {payees} payees")

        step = time.perf_counter()
        with session_scope(runtime.sessions) as session:
            batch, _ = planning.create_batch(session, settings, "manual", "USD", created_by="bench")
            planning.approve(session, batch.id, approved_by="bench", enqueue=False)
            batch_id = batch.id
        report.timings["create batch"] = time.perf_counter() - step

        step, cpu = time.perf_counter(), time.process_time()
        threads = [threading.Thread(target=runner.run_batch, args=(runtime, batch_id)) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        runner.run_batch(runtime, batch_id)  # completes the batch if the last thread left it to another
        report.timings["run batch"] = time.perf_counter() - step
        report.run_cpu_seconds = time.process_time() - cpu  # this process only (PostgreSQL's is its own)

        from payouts.service.queries import progress

        with session_scope(runtime.sessions) as session:
            report.paid = progress(session, [batch_id])[batch_id].by_status["paid"].count
        step = time.perf_counter()
        with session_scope(runtime.sessions) as session:
            report.findings = audit_ledger(session)
        report.timings["ledger audit"] = time.perf_counter() - step
    finally:
        set_runtime(previous)
        runtime.close()
    return report


def main() -> None:
    import argparse

    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(description="Time a whole payout batch (manual rail) of N synthetic payees.")
    parser.add_argument("--payees", type=int, default=10_000, help="synthetic sellers, each with an available balance")
    parser.add_argument("--database-url", default="",
                        help="an EMPTY scratch database (default: a new SQLite file in a temporary directory)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once on threads (PostgreSQL)")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="items per transaction (PAYOUT_CHUNK_SIZE)")
    args = parser.parse_args()
    console = Console()
    from kernel.tasking import install_celery

    # This process's composition root: the reconciliation the run enqueues runs here.
    install_celery(build_celery(get_settings(), in_process=True))
    report = run(payees=args.payees, database_url=args.database_url or None, workers=args.workers,
                 chunk=args.chunk, log=console.print)
    table = Table("step", "seconds", "payees/s", title=f"payout batch of {args.payees} payees ({report.database})")
    for step, seconds in report.timings.items():
        table.add_row(step, f"{seconds:.2f}", f"{args.payees / seconds:,.0f}" if seconds else "-")
    console.print(table)
    audit = "clean" if not report.findings else report.findings
    console.print(f"paid {report.paid}/{args.payees}; ledger audit: {audit}; run: "
                  f"{args.payees / report.timings['run batch']:,.0f} payees/s, "
                  f"{report.run_cpu_seconds:.1f} s of this process's CPU")
    raise SystemExit(0 if report.paid == args.payees and not report.findings else 1)


if __name__ == "__main__":
    main()
