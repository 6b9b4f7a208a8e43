"""Load held under faults: `python -m loadtests.bench --chaos` (issue 18, item 5).

The bench's real server under the locustfile's load, with everything the checkout path touches
running as in production and each of them killed once during the load:

1. one API worker process is SIGKILLed (uvicorn's supervisor starts a replacement);
2. the Celery worker is SIGKILLed, then started again;
3. Redis (cache, rate limits, click and funnel counters, and the Celery broker) is SIGKILLed,
   then started again, empty: it runs without persistence, so everything it held is lost.

For that the bench runs its own `redis-server` on a free port (never the shared one), its own
Celery worker on it (`--pool=solo`, the default queue: what the checkout path sends, the
confirmation mail of each order, `mail.send`), and an SMTP server that only notes which outbox
message arrived (the Message-ID is the outbox row's id); the API and the worker send mail to it.

Each fault has a window: from the kill to the moment the service proved it works again (the
API's replacement worker answered a request; the restarted Celery worker delivered a mail;
after Redis, a checkout answered 201 and a mail was delivered). Failed requests are counted
per window and after it, up to the next fault (the locustfile logs each request's end and
outcome, and the Idempotency-Key and order id of every 201, to `MARKETPLACE_REQUEST_LOG`).

Then, the load over: wait for the worker to empty the queue, stop it and the API, and run the
sweep an operator (or beat's `mail.resend_unsent`, which leaves mail younger than a minute
alone) runs for tasks lost with the broker or the killed worker: `marketplace mail --send`.
The invariants, each a violation when broken (the process exits 1):

* every order a client saw 201 for exists, exactly once: its Idempotency-Key has one row and it
  names that order; no key has two rows, no order was written without its key, no two keys
  seen named the same order;
* nothing oversold (stock conservation of every seeded variant: loadtests/seed.py);
* the ledger audit is clean (`marketplace ledger audit`);
* the worker's tasks are done: every outbox message is marked sent and arrived at the SMTP
  server (at least once: a worker killed between the server's "250" and its commit sends it
  again, as kernel/mail.py says);
* every fault recovered (within `--chaos-recovery-timeout`).

Timings (failures per window, recovery seconds, throughput) are reported, never judged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis

from loadtests import bench

QUEUE = "celery"  # Celery's default queue: the only one (no task routes), so mail.send's
STORE_DB, BROKER_DB = 0, 1
# The order checks that are violations unless zero (order_checks).
MUST_BE_ZERO = ("seen_201_missing", "seen_201_key_mismatch", "seen_201_conflicting", "duplicate_keys",
                "orders_without_key", "keys_without_order")


STARTED = time.monotonic()


def log(message: str) -> None:
    bench.log(f"chaos +{time.monotonic() - STARTED:.0f}s: {message}")


class OwnRedis:
    """A `redis-server` of the bench's own, on a free port, without persistence (a restart loses
    everything: the harshest restart), that the bench may kill and start again on that port."""

    def __init__(self, workdir: Path) -> None:
        self.port = bench.free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.RedisError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited on start (see {self.dir / 'redis.log'})") from None
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer in 20 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class SmtpSink:
    """An SMTP server that accepts everything and notes when which outbox message arrived (the
    platform's Message-ID is `<outbox row id@domain>`: kernel/mail.py)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = bench.free_port()
        self.arrivals: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        match = re.search(rb"^Message-ID:\s*<([^@>]+)@", content, re.MULTILINE | re.IGNORECASE)
        with self._lock:
            self.arrivals.append((time.time(), match.group(1).decode() if match else ""))
        return "250 OK"

    def first_after(self, moment: float) -> float | None:
        with self._lock:
            return next((at for at, _ in self.arrivals if at > moment), None)

    def last_arrival(self) -> float:
        with self._lock:
            return self.arrivals[-1][0] if self.arrivals else 0.0

    def delivered(self) -> Counter[str]:
        with self._lock:
            return Counter(mail_id for _, mail_id in self.arrivals)


class CeleryWorker:
    """`celery -A marketplace.worker worker` as the deployment runs it, in its own process group
    (a SIGKILL takes it whole, as the OOM killer or a lost machine would)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "marketplace.worker", "worker", "--pool=solo",
                 "--loglevel=WARNING", "--without-gossip", "--without-mingle", "-n", f"chaos{self.starts}@%h"],
                env=self.env, cwd=bench.REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        bench.stop(self.process)  # SIGTERM: a warm shutdown finishes the task in hand
        self.process = None


@dataclass
class Fault:
    """One fault: when it was injected, when the bench had restarted what it killed, and when the
    service proved it works again (None: not within the recovery timeout)."""

    name: str
    injected_at: float
    repaired_at: float | None = None
    recovered_at: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestLog:
    """What the locustfile wrote to MARKETPLACE_REQUEST_LOG: (end time, failed) per request, and
    (end time, Idempotency-Key, order id) per checkout answered 201."""

    requests: list[tuple[float, bool, str]]  # (end time, failed, why: status or exception class)
    orders: list[tuple[float, str, str]]

    @classmethod
    def read(cls, path: Path) -> RequestLog:
        requests: list[tuple[float, bool, str]] = []
        orders: list[tuple[float, str, str]] = []
        if path.exists():
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 5 and parts[0] == "R":
                    requests.append((float(parts[1]), parts[2] == "1", f"{parts[3]}:{parts[4]}"))
                elif len(parts) == 4 and parts[0] == "O":
                    orders.append((float(parts[1]), parts[2], parts[3]))
        return cls(requests, orders)

    def count(self, start: float, end: float) -> tuple[int, int]:
        """(requests, failed) that ended in [start, end)."""
        inside = [failed for at, failed, _ in self.requests if start <= at < end]
        return len(inside), sum(inside)

    def failures(self, start: float, end: float) -> dict[str, int]:
        """Failed requests that ended in [start, end), by "request name:why"."""
        return dict(Counter(why for at, failed, why in self.requests if failed and start <= at < end))


def first_order_after(path: Path, moment: float) -> float | None:
    """When the first checkout answered 201 after `moment` (the log so far)."""
    return next((at for at, _, _ in RequestLog.read(path).orders if at > moment), None)


def wait_until(predicate: Any, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def kill_api_worker(server: subprocess.Popen[bytes], host: str, metrics_dir: Path, timeout: float) -> Fault:
    """SIGKILL one API worker process. uvicorn's supervisor notices (it checks twice a second) and
    starts a replacement; recovered when the replacement has answered a request. Locust's users
    keep their connections open, so after the kill they all reconnect to the surviving worker
    and the replacement may never see one of theirs: the bench probes `/readyz` on a new
    connection each time (the kernel hands each to whichever worker accepts it) until the
    replacement has answered one (prometheus' multiprocess mode writes `histogram_<pid>.db` at a
    process's first request: every histogram of kernel/metrics.py has labels, so none is
    created at import)."""
    before = set(bench.worker_pids(server))
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    fault = Fault("api_worker_sigkill", time.time(), notes={"probes": 0})

    def replaced() -> bool:
        fresh = set(bench.worker_pids(server)) - before
        if not fresh:
            return False
        if fault.repaired_at is None:
            fault.repaired_at = time.time()
        if "imported_s" not in fault.notes and any((metrics_dir / f"counter_{pid}.db").exists() for pid in fresh):
            # kernel.metrics imported (unlabelled counters are created at import): the app is loading.
            fault.notes["imported_s"] = round(time.time() - fault.injected_at, 2)
        if any((metrics_dir / f"histogram_{pid}.db").exists() for pid in fresh):
            fault.recovered_at = time.time()
            return True
        fault.notes["probes"] += 1
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{host}/readyz", timeout=2)  # a new connection each time
        return False

    wait_until(replaced, timeout)
    return fault


def kill_celery_worker(worker: CeleryWorker, sink: SmtpSink, down_s: float, timeout: float) -> Fault:
    """SIGKILL the Celery worker, start it again after `down_s`; recovered when it delivered a mail."""
    worker.kill()
    fault = Fault("celery_worker_sigkill", time.time())
    time.sleep(down_s)
    worker.start()
    fault.repaired_at = time.time()
    repaired = fault.repaired_at
    if wait_until(lambda: sink.first_after(repaired) is not None, timeout):
        fault.recovered_at = sink.first_after(repaired)
    return fault


def restart_redis(own: OwnRedis, sink: SmtpSink, request_log: Path, down_s: float, timeout: float) -> Fault:
    """SIGKILL Redis, start it again (empty) after `down_s`; recovered when a checkout answered 201
    and the worker delivered a mail after the restart."""
    own.kill()
    fault = Fault("redis_restart", time.time())
    time.sleep(down_s)
    own.start()
    fault.repaired_at = time.time()
    repaired = fault.repaired_at
    if wait_until(lambda: first_order_after(request_log, repaired) is not None
                  and sink.first_after(repaired) is not None, timeout, step=0.2):
        api_ok, mail_ok = first_order_after(request_log, repaired), sink.first_after(repaired)
        assert api_ok is not None and mail_ok is not None
        fault.recovered_at = max(api_ok, mail_ok)
        fault.notes = {"api_ok_after_s": round(api_ok - repaired, 2), "worker_ok_after_s": round(mail_ok - repaired, 2)}
    return fault


def psql_url(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://")


def order_checks(database_url: str, seen: list[tuple[float, str, str]]) -> dict[str, int]:
    """Every order a client saw 201 for, against the database (see the module docstring)."""
    with psycopg.connect(psql_url(database_url)) as conn:
        conn.execute("CREATE TEMP TABLE seen (key text, order_id uuid)")
        with conn.cursor().copy("COPY seen (key, order_id) FROM STDIN") as copy:
            for _, key, order_id in seen:
                copy.write_row((key, order_id))

        def one(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else 0

        return {
            "orders": one("SELECT count(*) FROM orders"),
            "orders_seen_201": one("SELECT count(DISTINCT key) FROM seen"),
            # A 201 whose order is not in the database.
            "seen_201_missing": one(
                "SELECT count(*) FROM (SELECT DISTINCT order_id FROM seen) s "
                "WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = s.order_id)"),
            # A 201 whose key has no row naming that order (or two rows).
            "seen_201_key_mismatch": one(
                "SELECT count(*) FROM (SELECT DISTINCT key, order_id FROM seen) s WHERE "
                "(SELECT count(*) FROM idempotency_keys k WHERE k.key = s.key AND k.order_id = s.order_id) <> 1"),
            # One key answered with two orders, or two keys with one order.
            "seen_201_conflicting": one(
                "SELECT (SELECT count(*) FROM (SELECT key FROM seen GROUP BY key "
                "HAVING count(DISTINCT order_id) > 1) a) + (SELECT count(*) FROM (SELECT order_id FROM seen "
                "GROUP BY order_id HAVING count(DISTINCT key) > 1) b)"),
            "duplicate_keys": one(
                "SELECT count(*) FROM (SELECT key FROM idempotency_keys GROUP BY key HAVING count(*) > 1) d"),
            "orders_without_key": one(
                "SELECT count(*) FROM orders o WHERE NOT EXISTS "
                "(SELECT 1 FROM idempotency_keys k WHERE k.order_id = o.id)"),
            "keys_without_order": one(
                "SELECT count(*) FROM idempotency_keys k WHERE NOT EXISTS "
                "(SELECT 1 FROM orders o WHERE o.id = k.order_id)"),
            # Written, but the client saw no 201 (in flight when a process died; a retry with the
            # same key would return it): expected under faults, reported, not a violation.
            "orders_unseen": one(
                "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.order_id = o.id)"),
        }


def unsent_mail(database_url: str) -> int:
    with psycopg.connect(psql_url(database_url)) as conn:
        row = conn.execute("SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def mail_checks(database_url: str, sink: SmtpSink) -> dict[str, int]:
    with psycopg.connect(psql_url(database_url)) as conn:
        rows = conn.execute("SELECT id::text, sent_at IS NOT NULL FROM mail_outbox").fetchall()
    delivered = sink.delivered()
    return {
        "mail_outbox": len(rows),
        "mail_unsent": sum(1 for _, sent in rows if not sent),
        "mail_not_delivered": sum(1 for mail_id, _ in rows if not delivered[mail_id]),
        "mail_delivered_twice": sum(1 for mail_id, _ in rows if delivered[mail_id] > 1),
    }


def sweep_mail(env: dict[str, str], database_url: str) -> int:
    """What an operator (or beat, a minute later) does for tasks lost with the broker or a killed
    worker: `marketplace mail --send`, 500 of the newest waiting at a time. Returns how many were
    waiting."""
    waiting = unsent_mail(database_url)
    left = waiting
    while left:
        subprocess.run([sys.executable, "-m", "marketplace.cli", "mail", "--send", "--limit", "500"],
                       env=env, cwd=bench.REPO, stdout=subprocess.DEVNULL, check=True)
        now_left = unsent_mail(database_url)
        if now_left >= left:  # no progress: SMTP refuses them; the mail check reports it
            break
        left = now_left
    return waiting


def drain(broker: redis.Redis[bytes], sink: SmtpSink, timeout: float) -> bool:
    """Wait until the worker has taken every queued task and finished the last one (no mail
    delivered for a second)."""
    return wait_until(lambda: broker.llen(QUEUE) == 0 and time.time() - sink.last_arrival() > 1.0, timeout, 0.25)


def window_figures(faults: list[Fault], log_: RequestLog, load_end: float) -> list[dict[str, Any]]:
    """Per fault: requests and failures in its window, and after it up to the next fault."""
    out = []
    for index, fault in enumerate(faults):
        until = fault.recovered_at or load_end
        after_end = faults[index + 1].injected_at if index + 1 < len(faults) else load_end
        requests, failed = log_.count(fault.injected_at, until)
        requests_after, failed_after = log_.count(until, max(until, after_end))
        out.append({
            "fault": fault.name,
            "recovered": fault.recovered_at is not None,
            "repair_s": round(fault.repaired_at - fault.injected_at, 2) if fault.repaired_at else None,
            "recovery_s": round(fault.recovered_at - fault.injected_at, 2) if fault.recovered_at else None,
            "requests_during": requests, "failed_during": failed,
            "failures_during": log_.failures(fault.injected_at, until),
            "requests_after": requests_after, "failed_after": failed_after,
            **fault.notes,
        })
    return out


def run_chaos(args: argparse.Namespace) -> int:
    from loadtests.seed import oversold_variants, seed_platform

    workdir = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    request_log = workdir / "requests.log"
    own = OwnRedis(workdir)
    sink = SmtpSink()
    server: subprocess.Popen[bytes] | None = None
    worker: CeleryWorker | None = None
    locust: subprocess.Popen[bytes] | None = None
    try:
        own.start()
        sink.controller.start()
        database_url = bench.recreate_database(bench.BENCH_DB)
        pythonpath = os.pathsep.join([str(bench.REPO / "platform"), str(bench.REPO)])
        subprocess.run([sys.executable, "-m", "marketplace.cli", "db", "upgrade"], check=True, cwd=bench.REPO,
                       env={**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": pythonpath},
                       stdout=subprocess.DEVNULL)
        env = {
            **bench.server_env(database_url, str(metrics_dir), args.pool_size, args.threads),
            "REDIS_URL": own.url(STORE_DB), "CELERY_BROKER_URL": own.url(BROKER_DB),
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port), "SMTP_TLS": "none",
        }
        worker_env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        worker = celery_worker = CeleryWorker(worker_env, workdir / "worker.log")
        worker.start()
        port = bench.free_port()
        server = api = bench.start_servers(env, port, args.workers, args.server)
        host = f"http://127.0.0.1:{port}"
        log(f"{args.server} up on {host} ({args.workers} workers), Redis on {own.port}, SMTP on {sink.port}; seeding")
        seed_file = workdir / "seed.json"
        seed = seed_platform(database_url, host)
        seed_file.write_text(json.dumps(seed))

        log(f"load: {args.users} users for {args.duration} s; faults at 20 %, 45 % and 70 % of it")
        locust_env = {**os.environ, "MARKETPLACE_SEED_FILE": str(seed_file),
                      "MARKETPLACE_REQUEST_LOG": str(request_log)}
        timeout = args.chaos_recovery_timeout
        # Locust runs until the bench stops it (SIGTERM: it writes its figures and exits): the
        # load lasts --duration, longer when a recovery is slow, so that every fault starts
        # after the previous one recovered and each is followed by load ("after" its window).
        gap = max(2.0, 0.1 * args.duration)
        load_start = time.time()
        locust = subprocess.Popen(
            bench.locust_command(host, args.users, int(args.duration + 4 * timeout + 60), workdir / "locust"),
            env=locust_env, cwd=bench.REPO, stdout=subprocess.DEVNULL)
        faults: list[Fault] = []
        steps = [
            (0.20, lambda: kill_api_worker(api, host, metrics_dir, timeout)),
            (0.45, lambda: kill_celery_worker(celery_worker, sink, args.chaos_down, timeout)),
            (0.70, lambda: restart_redis(own, sink, request_log, args.chaos_down, timeout)),
        ]
        ready_at = load_start
        for fraction, inject in steps:
            time.sleep(max(0.0, load_start + fraction * args.duration - time.time(), ready_at - time.time()))
            fault = inject()
            faults.append(fault)
            took = f"{fault.recovered_at - fault.injected_at:.1f} s" if fault.recovered_at else "NOT recovered"
            log(f"{fault.name} at {fault.injected_at - load_start:.1f} s: recovered in {took}")
            ready_at = (fault.recovered_at or time.time()) + gap
        time.sleep(max(0.0, load_start + args.duration - time.time(), ready_at - time.time()))
        locust.send_signal(signal.SIGTERM)
        locust.wait(timeout=60)
        load_end = time.time()
        load = bench.read_locust(workdir / "locust")
        log(f"load done: {load['orders_per_s']:.1f} orders/s, {load['errors']} failed requests; draining the queue")
        broker = redis.Redis.from_url(own.url(BROKER_DB))
        drained = drain(broker, sink, args.chaos_drain_timeout)
        queued_left = int(broker.llen(QUEUE))
        delivered_by_worker = len(sink.delivered())
        worker.stop()
        bench.stop(server)
        server = None
        swept = sweep_mail(worker_env, database_url)
        log(f"queue {'drained' if drained else f'NOT drained ({queued_left} left)'}; "
            f"{swept} mail(s) waiting after it, sent by the sweep; checking the invariants")

        requests = RequestLog.read(request_log)
        orders = order_checks(database_url, requests.orders)
        mail = mail_checks(database_url, sink)
        oversold = oversold_variants(database_url, seed)
        audit_ok = bench.run_audit(database_url)
        windows = window_figures(faults, requests, load_end)
        before_requests, before_failed = requests.count(load_start - 60, faults[0].injected_at)
        counts = {**{name: orders[name] for name in MUST_BE_ZERO}, "oversold": oversold,
                  "mail_unsent": mail["mail_unsent"], "mail_not_delivered": mail["mail_not_delivered"]}
        violations = [name for name, value in counts.items() if value]
        if not audit_ok:
            violations.append("audit")
        if orders["orders_seen_201"] == 0:
            violations.append("no_order_seen")  # nothing checked is nothing proved
        violations += [f"{fault.name}_not_recovered" for fault in faults if fault.recovered_at is None]
        result = {
            "chaos": True,
            "invariants_ok": not violations, "violations": violations,
            **orders, "oversold": oversold, "audit_ok": audit_ok,
            **mail, "mail_delivered_by_worker": delivered_by_worker, "mail_swept": swept,
            "queue_drained": drained,
            "faults": windows,
            "requests_before_faults": before_requests, "failed_before_faults": before_failed,
            "orders_per_s": round(load["orders_per_s"], 1),
            "p50_ms": load["p50_ms"], "p95_ms": load["p95_ms"], "p99_ms": load["p99_ms"],
            "errors": load["errors"], "requests": load["requests"],
            "users": args.users, "workers": args.workers, "server": args.server, "duration_s": args.duration,
            "down_s": args.chaos_down,
        }
        print(json.dumps(result), flush=True)
        if violations:
            log(f"INVARIANTS BROKEN: {', '.join(violations)}")
        return 0 if not violations else 1
    finally:
        if locust is not None and locust.poll() is None:
            locust.terminate()
            locust.wait(timeout=20)
        bench.stop(server)
        if worker is not None:
            worker.stop()
        own.stop()
        with contextlib.suppress(AssertionError, RuntimeError):  # never started
            sink.controller.stop()
        with contextlib.suppress(psycopg.Error):
            bench.drop_database(bench.BENCH_DB)
        if os.environ.get("BENCH_KEEP_WORKDIR"):
            log(f"work directory kept: {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
