"""Order test fixtures: a live HTTP server (real sockets, real threads) for concurrency tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from marketplace.app import create_app
from tests.catalog.conftest import stripe_env  # noqa: F401  (re-exported fixture)
from tests.conftest import Backend


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(env: Backend) -> Iterator[str]:
    """The API served by uvicorn on a free port in a background thread; yields its base URL."""
    port = _free_port()
    config = uvicorn.Config(create_app(runtime=env.runtime), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the live server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client
