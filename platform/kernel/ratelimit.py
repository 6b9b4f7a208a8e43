"""Fixed-window rate limits per API key and per client address (public endpoints), and the
throttle on failed authentication per client address."""

from __future__ import annotations

import structlog

from kernel.cache import STORE_OUTAGES, Store
from kernel.errors import RateLimited

WINDOW_SECONDS = 60
log = structlog.get_logger(__name__)


def enforce(store: Store, bucket: str, limit_per_minute: int) -> None:
    if limit_per_minute <= 0:
        return
    try:
        count, reset_in = store.incr_window(f"rl:{bucket}", WINDOW_SECONDS)
    except STORE_OUTAGES:
        # A protection, not a dependency (as the failed-auth throttle below): with Redis down the
        # request is served unlimited rather than refused.
        log.warning("rate_limit_unavailable", bucket=bucket, exc_info=True)
        return
    if count > limit_per_minute:
        raise RateLimited(
            f"rate limit of {limit_per_minute} requests per minute exceeded; retry in {reset_in} s",
            headers={"Retry-After": str(reset_in)},
        )


def _failures_bucket(client: str) -> str:
    return f"rl:authfail:{client}"


def refuse_if_failing(store: Store, client: str, limit_per_minute: int) -> None:
    """Before any key lookup: an address that sent `limit_per_minute` bad keys this minute gets
    429 until the window turns, so guessing keys costs no database work (and gains nothing)."""
    if limit_per_minute <= 0:
        return
    try:
        failures, reset_in = store.window_count(_failures_bucket(client), WINDOW_SECONDS)
    except Exception:
        # A protection, not a dependency: with the store down, keys are still checked (in the
        # database) rather than every authenticated request failing.
        log.warning("auth_throttle_unavailable", exc_info=True)
        return
    if failures >= limit_per_minute:
        raise RateLimited(
            f"too many failed authentications from this address; retry in {reset_in} s",
            headers={"Retry-After": str(reset_in)},
        )


def record_failure(store: Store, client: str, limit_per_minute: int) -> None:
    if limit_per_minute <= 0:
        return
    try:
        store.incr_window(_failures_bucket(client), WINDOW_SECONDS)
    except Exception:
        log.warning("auth_throttle_unavailable", exc_info=True)
