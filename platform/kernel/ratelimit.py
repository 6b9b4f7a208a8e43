"""Fixed-window rate limits per API key and per client address (public endpoints)."""

from __future__ import annotations

from kernel.cache import Store
from kernel.errors import RateLimited

WINDOW_SECONDS = 60


def enforce(store: Store, bucket: str, limit_per_minute: int) -> None:
    if limit_per_minute <= 0:
        return
    count, reset_in = store.incr_window(f"rl:{bucket}", WINDOW_SECONDS)
    if count > limit_per_minute:
        raise RateLimited(
            f"rate limit of {limit_per_minute} requests per minute exceeded; retry in {reset_in} s",
            headers={"Retry-After": str(reset_in)},
        )
