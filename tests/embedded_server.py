"""`marketplace serve` on the embedded default, as a newcomer starts it, in a scratch directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET")


def newcomer_env() -> dict[str, str]:
    """The environment of a fresh shell: none of the services configured, the project importable."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "platform"), str(REPO_ROOT)])
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text()


@contextmanager
def embedded_server(directory: Path, start_timeout_s: float = 120,
                    env: dict[str, str] | None = None) -> Iterator[Served]:
    """Run `marketplace serve` in `directory` (with `env` added to a newcomer's environment)
    until the block ends; yields once /healthz answers."""
    port = free_port()
    log = directory / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "marketplace.cli", "serve", "--port", str(port)],
            cwd=directory, env={**newcomer_env(), **(env or {})}, stdout=sink, stderr=subprocess.STDOUT, text=True,
        )
    served = Served(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + start_timeout_s
        status = None
        while status != 200:
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"marketplace serve did not come up:\n{served.output()[-3000:]}")
            try:
                status = httpx.get(f"{served.base_url}/healthz", timeout=1).status_code
            except httpx.TransportError:
                time.sleep(0.3)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=20)
