"""The benchmark: `python -m loadtests.bench --duration 30`.

On this machine, in one run: start PostgreSQL-backed API servers the way production runs them
(several worker processes), seed sellers, products with ample stock, affiliates, storefronts and
plans, run the Locust users headless against the hot order path, then measure the database's own
ceiling (pgbench's built-in TPC-B-like script, 8 clients, 15 s, on a scratch database), run the
ledger audit, and print one JSON object last. Figures are ratios to pgbench measured in the same
run, because these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Overridable so two people (or two checkouts) benchmarking on one PostgreSQL do not drop each
# other's databases mid-run.
BENCH_DB = os.environ.get("BENCH_DB", "marketplace_bench")
PGBENCH_DB = os.environ.get("BENCH_PGBENCH_DB", "marketplace_pgbench")
# The floor's scratch database: a copy of the seeded one (loadtests/floor.py says why).
FLOOR_DB = os.environ.get("BENCH_FLOOR_DB", f"{BENCH_DB}_floor")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def recreate_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url_of(name)


def database_url_of(name: str) -> str:
    return f"{PG_ADMIN.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://')}/{name}"


def copy_database(source: str, target: str) -> str:
    """`target` as a copy of `source` (CREATE DATABASE ... TEMPLATE: nobody may be connected to
    `source`; a server just stopped may take a moment to let go of its connections)."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        for attempt in range(50):
            try:
                conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.2)
    return database_url_of(target)


def count_orders(database_url: str) -> int:
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
    return int(row[0]) if row else 0


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database_url: str, metrics_dir: str, pool_size: int, threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "CELERY_"))}
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": "memory://",  # no worker in the bench: enqueued tasks are not run
        "RATE_LIMIT_PER_KEY_PER_MINUTE": "0",
        "RATE_LIMIT_PUBLIC_PER_MINUTE": "0",
        "DB_POOL_SIZE": str(pool_size),
        "DB_MAX_OVERFLOW": "4",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        **({"SERVER_THREADS": str(threads)} if threads else {}),
        "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)]),
    })
    return env


REAL_APP = "marketplace.app:create_app"
FLOOR_APP = "loadtests.floor:create_app"


def server_command(server: str, port: int, workers: int, app: str = REAL_APP) -> list[str]:
    """The production command line of each ASGI server we measured (see loadtests/README.md);
    the floor (`app=FLOOR_APP`) is started with the same one."""
    if server == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory", app,
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--loop", "uvloop", "--log-level", "warning", "--no-ws",
        ]
    return [
        sys.executable, "-m", "uvicorn", app, "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools",
    ]


def start_servers(env: dict[str, str], port: int, workers: int, server: str = "uvicorn",
                  app: str = REAL_APP) -> subprocess.Popen[bytes]:
    command = server_command(server, port, workers, app)
    process = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"the server ({app}) exited during start-up")
            time.sleep(0.3)
        raise RuntimeError(f"the server ({app}) did not become ready in 60 s")
    except BaseException:
        stop(process)  # the caller never holds it: stop it here (its workers would restart forever)
        raise


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (from /proc: the parent id is field 4 of /proc/N/stat)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_mb(pid: int) -> float | None:
    try:
        match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def worker_pids(server: subprocess.Popen[bytes]) -> list[int]:
    """The server's worker processes: descendants that run the app (not multiprocessing's
    resource tracker, which uvicorn's supervisor also starts)."""
    pids = []
    for pid in descendants(server.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            pids.append(pid)
    # One worker: uvicorn serves in the process it started in (no supervisor, no children).
    return pids or [server.pid]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (fields 14 and 15 of /proc/N/stat)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def processes_named(name: str) -> list[int]:
    """Live processes whose command name (/proc/N/comm) is `name`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, softirq) CPU seconds of every core so far, from /proc/stat's `cpu` line: busy is
    all but idle and iowait; softirq is mostly loopback networking here."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - fields[3] - fields[4]) / tick, fields[6] / tick


def cpu_seconds_by_pid(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


class CpuBudget:
    """Where the machine's CPU went during the load, per request (ms): our servers, the load
    generator, PostgreSQL, Redis, the kernel's softirq work (loopback networking) and everything
    else (other people's work included). The load generator and the database share the
    servers' cores, so this shows how much CPU the servers can get on this machine at all."""

    def __init__(self, server_pids: list[int]) -> None:
        self.server_pids = server_pids
        self.before = self._read()

    def _read(self) -> dict[str, Any]:
        busy, softirq = machine_cpu_seconds()
        return {
            "server": cpu_seconds(self.server_pids),
            # Per process: database connections opened during the load count from zero.
            "database": cpu_seconds_by_pid(processes_named("postgres")),
            "redis": cpu_seconds(processes_named("redis-server")),
            # Locust runs as a child we wait for: its CPU (and its children's) lands here.
            "load_generator": sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),
            "softirq": softirq,
            "machine": busy,
        }

    def spent(self) -> dict[str, float]:
        """CPU seconds spent so far, by who spent it."""
        after = self._read()
        spent = {name: after[name] - self.before[name] for name in after if name != "database"}
        spent["database"] = sum(seconds - self.before["database"].get(pid, 0.0)
                                for pid, seconds in after["database"].items())
        spent["other"] = spent.pop("machine") - sum(spent.values())
        return spent

    def per_request_ms(self, requests: int) -> dict[str, float]:
        return per_ms(self.spent(), requests)


def per_ms(spent: dict[str, float], count: int) -> dict[str, float]:
    """CPU seconds by who spent them, as ms per request (or per order)."""
    return {name: round(1000 * seconds / count, 2) for name, seconds in spent.items()} if count else {}


def worker_rss_mb(server: subprocess.Popen[bytes]) -> list[float]:
    """Resident memory of each server worker process, MiB."""
    return [size for size in (rss_mb(pid) for pid in worker_pids(server)) if size is not None]


# Both checkout endpoints: in a storefront, and outside one (referral link or coupon).
CHECKOUT_ROUTES = ("/v1/storefronts/{slug}/orders", "/v1/checkout")


def checkout_statements(port: int) -> tuple[float, float]:
    """(statements, requests) of the checkout routes so far, summed over every server process."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        for part in found:
            if line.startswith(f"sql_statements_per_request_{part}{{") and any(
                f'route="{route}"' in line for route in CHECKOUT_ROUTES
            ):
                found[part] += float(line.rsplit(" ", 1)[1])
    return found["sum"], found["count"]


def percentile(response_times: dict[int, int], count: int, fraction: float) -> int:
    """Locust's own percentile of its bucketed response times (locust.stats
    `calculate_response_time_percentile`; importing Locust would monkey-patch this process)."""
    wanted = int(count * fraction)
    seen = 0
    for response_time in sorted(response_times, reverse=True):
        seen += response_times[response_time]
        if count - seen <= wanted:
            return response_time
    return 0


def locust_command(host: str, users: int, duration: int, out_prefix: Path) -> list[str]:
    """The locustfile, headless, for `duration` seconds; final figures in `<out_prefix>.json`."""
    return [
        sys.executable, "-m", "locust", "-f", str(REPO / "loadtests" / "locustfile.py"), "--headless",
        "-u", str(users), "-r", str(max(1, users)), "-t", f"{duration}s", "--host", host,
        "--json-file", str(out_prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5",
    ]


def run_locust(host: str, seed_file: Path, users: int, duration: int, out_prefix: Path) -> dict[str, Any]:
    """Run the locustfile headless; its final figures. From `--json-file`, written at exit: the
    CSV files are written once a second during the run, not at exit, so they miss up to the
    last second of requests (half of a 2-second run's)."""
    env = {**os.environ, "MARKETPLACE_SEED_FILE": str(seed_file)}
    subprocess.run(locust_command(host, users, duration, out_prefix), env=env, cwd=REPO, check=False,
                   stdout=subprocess.DEVNULL)
    return read_locust(out_prefix)


def read_locust(out_prefix: Path) -> dict[str, Any]:
    """Locust's final figures from its `--json-file` (Locust adds the suffix)."""
    entries = json.loads(Path(f"{out_prefix}.json").read_text())
    checkout = next((entry for entry in entries if entry["name"] == "checkout"), None)
    if checkout is None or not checkout["num_requests"]:
        raise RuntimeError("locust recorded no checkout requests")
    # As Locust's "Requests/s": every entry's count over the run's first to last request.
    elapsed = max(e["last_request_timestamp"] or 0 for e in entries) - min(e["start_time"] for e in entries)
    times = {int(ms): n for ms, n in checkout["response_times"].items()}
    orders, requests = checkout["num_requests"], sum(entry["num_requests"] for entry in entries)
    return {
        "orders": orders,
        "orders_per_s": orders / elapsed,
        "p50_ms": float(percentile(times, orders, 0.50)),
        "p95_ms": float(percentile(times, orders, 0.95)),
        "p99_ms": float(percentile(times, orders, 0.99)),
        "errors": sum(entry["num_failures"] for entry in entries),
        "requests_per_s": requests / elapsed,
        "requests": requests,
    }


def run_pgbench(seconds: int) -> float:
    recreate_database(PGBENCH_DB)
    base = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
    subprocess.run(["pgbench", *base, "-i", "-s", "10", "-q", PGBENCH_DB], check=True, capture_output=True)
    result = subprocess.run(
        ["pgbench", *base, "-c", "8", "-j", "2", "-T", str(seconds), PGBENCH_DB],
        check=True, capture_output=True, text=True,
    )
    drop_database(PGBENCH_DB)
    match = re.search(r"tps = ([\d.]+)", result.stdout)
    if match is None:
        raise RuntimeError(f"cannot read pgbench output:\n{result.stdout}")
    return float(match.group(1))


def run_audit(database_url: str) -> bool:
    env = {**os.environ, "DATABASE_URL": database_url,
           "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)])}
    result = subprocess.run([sys.executable, "-m", "marketplace.cli", "ledger", "audit"], env=env, cwd=REPO,
                            capture_output=True, text=True)
    if result.returncode != 0:
        log(result.stdout[-2000:] + result.stderr[-2000:])
    return result.returncode == 0


def summarize_profile(path: Path, top: int = 25) -> str:
    """The functions with the most samples (self and total) in a py-spy collapsed-stack file."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = stack.split(";")
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
    def table(counts: dict[str, int]) -> str:
        rows = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return "\n".join(f"  {100 * n / max(samples, 1):5.1f}%  {frame}" for frame, n in rows)
    return f"{samples} samples\nself:\n{table(own)}\ntotal (inclusive):\n{table(total)}"


def start_profiler(server: subprocess.Popen[bytes], out_dir: Path, seconds: int) -> list[subprocess.Popen[bytes]]:
    """py-spy on every server worker for `seconds`: collapsed stacks of the thread holding the GIL
    (where the CPU goes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise RuntimeError("--profile needs py-spy: pip install py-spy")
    return [
        subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
                          "--gil", "--format", "raw", "--output", str(out_dir / f"worker-{pid}.txt"), "--nonblocking"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pid in worker_pids(server)
    ]


@dataclass
class Phase:
    """One load phase against one server: Locust's figures and the CPU it cost, by who spent it."""

    name: str  # "real" or "floor"
    load: dict[str, Any]
    cpu_seconds: dict[str, float]


def measure(name: str, server: subprocess.Popen[bytes], host: str, seed_file: Path, args: argparse.Namespace,
            out_prefix: Path) -> Phase:
    # CPU per request, the servers' above all: on a shared, noisy machine this moves much less
    # than requests per second do, so it shows what a change saves even when the throughput
    # figures of two runs are buried in other people's load.
    budget = CpuBudget(worker_pids(server))
    log(f"{name}: running {args.users} users for {args.duration} s")
    load = run_locust(host, seed_file, args.users, args.duration, out_prefix)
    phase = Phase(name, load, budget.spent())
    log(f"{name}: {load['orders_per_s']:.1f} orders/s, p99 {load['p99_ms']} ms, {load['errors']} errors, "
        f"server CPU {per_ms(phase.cpu_seconds, load['orders']).get('server')} ms per order")
    return phase


def combined(phases: list[Phase]) -> dict[str, Any]:
    """The phases of one server as one: orders/s averaged (every phase lasts as long), the worst
    percentile of any phase, errors and CPU summed (CPU per request and per order over all)."""
    loads = [phase.load for phase in phases]
    cpu: dict[str, float] = {}
    for phase in phases:
        for who, seconds in phase.cpu_seconds.items():
            cpu[who] = cpu.get(who, 0.0) + seconds
    requests, orders = sum(load["requests"] for load in loads), sum(load["orders"] for load in loads)
    return {
        "orders_per_s": sum(load["orders_per_s"] for load in loads) / len(loads),
        "requests_per_s": sum(load["requests_per_s"] for load in loads) / len(loads),
        **{p: max(load[p] for load in loads) for p in ("p50_ms", "p95_ms", "p99_ms")},
        "errors": sum(load["errors"] for load in loads), "orders": orders, "requests": requests,
        "cpu_ms_per_request": per_ms(cpu, requests), "cpu_ms_per_order": per_ms(cpu, orders),
    }


def capture_floor(env: dict[str, str], database_url: str, seed_file: Path, out: Path) -> None:
    """The floor's statement templates, captured from the real app (loadtests/floor.py)."""
    capture_env = {k: v for k, v in env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    subprocess.run([sys.executable, "-m", "loadtests.floor", "capture", "--database-url", database_url,
                    "--seed", str(seed_file), "--out", str(out)], check=True, cwd=REPO, env=capture_env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=30, help="seconds of load (per phase)")
    parser.add_argument("--users", type=int, default=8,
                        help="concurrent Locust users (closed loop; 8 gives the most orders per second here)")
    parser.add_argument("--workers", type=int, default=2, help="API server processes")
    parser.add_argument("--pool-size", type=int, default=int(os.environ.get("BENCH_DB_POOL_SIZE", "8")),
                        help="database connections per server process (plus 4 overflow)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per server process for the sync handlers (SERVER_THREADS; default anyio's 40)")
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn", help="ASGI server")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="also load the floor (loadtests/floor.py: the real checkout's statements and nothing "
                        "else), alternating with the real server, and report ratio_to_floor")
    parser.add_argument("--rounds", type=int, default=2,
                        help="with --floor: real and floor phases of --duration each, alternating, this many times")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--skip-pgbench", action="store_true", help="smoke runs: no ceiling, no ratio")
    parser.add_argument("--profile", metavar="DIR", help="record every server worker with py-spy into DIR "
                        "(collapsed stacks) and print a summary of where the time goes (the first real phase)")
    parser.add_argument("--chaos", action="store_true",
                        help="load held under faults (loadtests/chaos.py): one API worker SIGKILLed, the Celery "
                        "worker SIGKILLed and restarted, Redis restarted, during one real phase of --duration; "
                        "then the invariants (exit 1 when one breaks). No floor, no pgbench")
    parser.add_argument("--chaos-down", type=float, default=1.0,
                        help="with --chaos: seconds the killed Celery worker and Redis stay down")
    parser.add_argument("--chaos-recovery-timeout", type=float, default=60.0,
                        help="with --chaos: seconds a fault may take to recover before it counts as a violation")
    parser.add_argument("--chaos-drain-timeout", type=float, default=180.0,
                        help="with --chaos: seconds the worker gets to empty the queue after the load")
    args = parser.parse_args(argv)
    if args.chaos:
        from loadtests.chaos import run_chaos

        if args.workers < 2:  # one uvicorn worker serves in its supervisor's process: nobody restarts it
            parser.error("--chaos kills one API worker process and needs --workers 2 or more")

        return run_chaos(args)

    from loadtests.seed import oversold_variants, seed_platform

    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    server: subprocess.Popen[bytes] | None = None
    floor_server: subprocess.Popen[bytes] | None = None
    profilers: list[subprocess.Popen[bytes]] = []
    try:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        database_url = recreate_database(BENCH_DB)
        subprocess.run([sys.executable, "-m", "marketplace.cli", "db", "upgrade"], check=True, cwd=REPO,
                       env={**os.environ, "DATABASE_URL": database_url,
                            "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)])},
                       stdout=subprocess.DEVNULL)
        port = free_port()
        env = server_env(database_url, str(metrics_dir), args.pool_size, args.threads)
        server = start_servers(env, port, args.workers, args.server)
        host = f"http://127.0.0.1:{port}"
        log(f"{args.server} up on {host} ({args.workers} workers, pool {args.pool_size}, threads {args.threads}); "
            "seeding")
        seed_file = workdir / "seed.json"
        seed = seed_platform(database_url, host)
        seed_file.write_text(json.dumps(seed))
        floor_url = None
        floor_host = ""
        floor_orders_before = 0
        if args.floor:
            log("floor: capturing one real request of each kind, copying the seeded database")
            templates = workdir / "floor-templates.pickle"
            capture_floor(env, database_url, seed_file, templates)
            stop(server)  # nobody may be connected to a database being copied
            server = None
            floor_url = copy_database(BENCH_DB, FLOOR_DB)
            floor_orders_before = count_orders(floor_url)
            server = start_servers(env, port, args.workers, args.server)
            floor_port = free_port()
            floor_env = {**server_env(floor_url, str(workdir / "floor-metrics"), args.pool_size, args.threads),
                         "FLOOR_TEMPLATES": str(templates)}
            floor_server = start_servers(floor_env, floor_port, args.workers, args.server, FLOOR_APP)
            floor_host = f"http://127.0.0.1:{floor_port}"
            log(f"floor up on {floor_host} ({args.workers} workers, pool {args.pool_size})")
        statements_before, checkouts_before = checkout_statements(port)
        phases: list[Phase] = []
        for round_number in range(args.rounds if args.floor else 1):
            if args.profile and round_number == 0:
                profilers = start_profiler(server, Path(args.profile), max(1, args.duration - 2))
            phases.append(measure("real", server, host, seed_file, args, workdir / f"locust-real-{round_number}"))
            if floor_server is not None:
                phases.append(measure("floor", floor_server, floor_host, seed_file, args,
                                      workdir / f"locust-floor-{round_number}"))
        statements_after, checkouts_after = checkout_statements(port)
        statements, checkouts = statements_after - statements_before, checkouts_after - checkouts_before
        real = combined([phase for phase in phases if phase.name == "real"])
        floor = combined([phase for phase in phases if phase.name == "floor"]) if args.floor else None
        rss = worker_rss_mb(server)
        for profiler in profilers:
            profiler.wait(timeout=60)
        if args.profile:
            for path in sorted(Path(args.profile).glob("worker-*.txt")):
                log(f"profile {path}:\n{summarize_profile(path)}")
        stop(server)
        server = None
        stop(floor_server)
        floor_server = None
        log("load done; checking stock, auditing the ledger")
        oversold = oversold_variants(database_url, seed)
        audit_ok = run_audit(database_url)
        floor_oversold = oversold_variants(floor_url, seed) if floor_url else None
        # Every checkout the floor answered 201 wrote its order (a write that wrote nothing would
        # leave the stock check trivially true).
        floor_written = count_orders(floor_url) - floor_orders_before if floor_url else None
        pgbench_tps = None
        if not args.skip_pgbench:
            log(f"pgbench: 8 clients, {args.pgbench_seconds} s, scratch database")
            pgbench_tps = run_pgbench(args.pgbench_seconds)
        result = {
            "orders_per_s": round(real["orders_per_s"], 1),
            "p50_ms": real["p50_ms"], "p95_ms": real["p95_ms"], "p99_ms": real["p99_ms"],
            "errors": real["errors"],
            "oversold": oversold,
            "audit_ok": audit_ok,
            # From the servers' own counter: SQL statements per checkout request.
            "statements_per_order": round(statements / checkouts, 1) if checkouts else None,
            "rss_mb_per_worker": round(max(rss), 1) if rss else None,
            # Server CPU (every worker, user + system) per request of the whole mix, ms.
            "server_cpu_ms_per_request": real["cpu_ms_per_request"].get("server"),
            # The whole machine's CPU in the load window, per request, by who spent it.
            "cpu_ms_per_request": real["cpu_ms_per_request"],
            # Server CPU per order (checkout): every worker's CPU over the whole mix, per checkout.
            "server_cpu_ms_per_order": real["cpu_ms_per_order"].get("server"),
            # The floor (loadtests/floor.py), loaded alike, alternating with the real server.
            "floor_orders_per_s": round(floor["orders_per_s"], 1) if floor else None,
            "ratio_to_floor": round(real["orders_per_s"] / floor["orders_per_s"], 3)
            if floor and floor["orders_per_s"] else None,
            "floor_server_cpu_ms_per_order": floor["cpu_ms_per_order"].get("server") if floor else None,
            "floor_p50_ms": floor["p50_ms"] if floor else None, "floor_p95_ms": floor["p95_ms"] if floor else None,
            "floor_p99_ms": floor["p99_ms"] if floor else None,
            "floor_errors": floor["errors"] if floor else None,
            "floor_oversold": floor_oversold,
            "floor_orders_written": floor_written,
            "floor_orders": floor["orders"] if floor else None,
            "floor_cpu_ms_per_order": floor["cpu_ms_per_order"] if floor else None,
            "cpu_ms_per_order": real["cpu_ms_per_order"],
            "phases": [{"server": phase.name, "orders_per_s": round(phase.load["orders_per_s"], 1),
                        "p99_ms": phase.load["p99_ms"], "errors": phase.load["errors"],
                        "server_cpu_ms_per_order": per_ms(phase.cpu_seconds, phase.load["orders"]).get("server")}
                       for phase in phases],
            "pgbench_tps": pgbench_tps,
            "ratio": round(real["orders_per_s"] / pgbench_tps, 3) if pgbench_tps else None,
            "orders": real["orders"], "requests_per_s": round(real["requests_per_s"], 1), "users": args.users,
            "workers": args.workers, "pool_size": args.pool_size, "threads": args.threads, "server": args.server,
            "duration_s": args.duration,
        }
        print(json.dumps(result), flush=True)
        floor_ok = floor is None or (floor["errors"] == 0 and floor_oversold == 0 and floor_written == floor["orders"])
        return 0 if result["errors"] == 0 and oversold == 0 and audit_ok and floor_ok else 1
    finally:
        for profiler in profilers:
            if profiler.poll() is None:
                profiler.terminate()
                profiler.wait(timeout=10)
        stop(server)
        stop(floor_server)
        try:
            drop_database(BENCH_DB)
            drop_database(PGBENCH_DB)
            drop_database(FLOOR_DB)
        except psycopg.Error:
            pass
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
