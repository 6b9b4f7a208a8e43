"""A small key/value cache and counter store: Redis when configured, in-process otherwise.

Used for hot catalog reads, rate limits and click counters. The in-process variant exists so
the embedded default needs no Redis; it is per process, which is fine for one process.

Several processes without Redis (`marketplace serve --workers 2` on PostgreSQL, Celery workers,
a second server) get `CountersOnlyStore`: counters and rate limits per process, but NO cached
entries. A cache in one process's memory is invalidated only by the writes that process makes,
so the others would show an old price or stock (for up to the TTL) while checkout, which reads
the database, charges the new one. Sharing invalidation through the database instead would
cost a round trip on every read (most of what the cache saves on a read by primary key) and a
write on every checkout; a shared cache is what Redis is for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis
from sqlalchemy.orm import Session

# What a Redis outage raises (down, restarting, unreachable): callers that can do without the store
# (rate limits, referral counting) catch these; the rest become a 503 (kernel.errors).
STORE_OUTAGES: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class Store(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl_seconds: int) -> None: ...
    def delete(self, *keys: str) -> None: ...
    def incr_window(self, key: str, window_seconds: int) -> tuple[int, int]:
        """Increment a fixed-window counter; return (count, seconds until the window resets)."""
        ...
    def window_count(self, key: str, window_seconds: int) -> tuple[int, int]:
        """The current count of `incr_window(key, window_seconds)`, without counting; (count, reset_in)."""
        ...
    def incr(self, key: str, amount: int = 1) -> int: ...
    def incr_many(self, amounts: dict[str, int], *, also_set: dict[str, bytes] | None = None,
                  ttl_seconds: int = 0) -> None:
        """`incr` for several counters, and `set` for the keys of `also_set` (with `ttl_seconds`),
        in one round trip."""
        ...
    def claim(self, values: dict[str, bytes], ttl_seconds: int) -> dict[str, bytes | None]:
        """Set each key that does not exist (with the ttl); return, per key, the value it already
        held (None: this call set it). One atomic step per key, one round trip."""
        ...
    def pop_counters(self, pattern_prefix: str) -> dict[str, int]:
        """Atomically read and reset every counter whose key starts with the prefix."""
        ...
    def ping(self) -> bool: ...


class MemoryStore:
    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            value, expires = item
            if expires < time.monotonic():
                del self._data[key]
                return None
            return value

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._lock:
            self._data[key] = (value, time.monotonic() + ttl_seconds)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def incr_window(self, key: str, window_seconds: int) -> tuple[int, int]:
        now = time.time()
        window = int(now // window_seconds)
        reset_in = int(window_seconds - (now % window_seconds)) or 1
        window_key = f"{key}:{window}"
        with self._lock:
            count = self._counters.get(window_key, 0) + 1
            self._counters[window_key] = count
            stale = [k for k in self._counters if k.startswith(f"{key}:") and k != window_key]
            for k in stale:
                del self._counters[k]
        return count, reset_in

    def window_count(self, key: str, window_seconds: int) -> tuple[int, int]:
        now = time.time()
        reset_in = int(window_seconds - (now % window_seconds)) or 1
        with self._lock:
            return self._counters.get(f"{key}:{int(now // window_seconds)}", 0), reset_in

    def incr(self, key: str, amount: int = 1) -> int:
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + amount
            return self._counters[key]

    def incr_many(self, amounts: dict[str, int], *, also_set: dict[str, bytes] | None = None,
                  ttl_seconds: int = 0) -> None:
        with self._lock:
            for key, amount in amounts.items():
                self._counters[key] = self._counters.get(key, 0) + amount
            for key, value in (also_set or {}).items():
                self._data[key] = (value, time.monotonic() + ttl_seconds)

    def claim(self, values: dict[str, bytes], ttl_seconds: int) -> dict[str, bytes | None]:
        now = time.monotonic()
        held: dict[str, bytes | None] = {}
        with self._lock:
            for key, value in values.items():
                item = self._data.get(key)
                if item is not None and item[1] >= now:
                    held[key] = item[0]
                else:
                    self._data[key] = (value, now + ttl_seconds)
                    held[key] = None
        return held

    def pop_counters(self, pattern_prefix: str) -> dict[str, int]:
        with self._lock:
            found = {k: v for k, v in self._counters.items() if k.startswith(pattern_prefix)}
            for k in found:
                del self._counters[k]
        return found

    def ping(self) -> bool:
        return True


class RedisStore:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def get(self, key: str) -> bytes | None:
        value = self.client.get(key)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self.client.set(key, value, ex=ttl_seconds)

    def delete(self, *keys: str) -> None:
        if keys:
            self.client.delete(*keys)

    def incr_window(self, key: str, window_seconds: int) -> tuple[int, int]:
        now = time.time()
        window = int(now // window_seconds)
        reset_in = int(window_seconds - (now % window_seconds)) or 1
        window_key = f"{key}:{window}"
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(window_key)
        pipe.expire(window_key, window_seconds + 1)
        count, _ = pipe.execute()
        return int(count), reset_in

    def window_count(self, key: str, window_seconds: int) -> tuple[int, int]:
        now = time.time()
        reset_in = int(window_seconds - (now % window_seconds)) or 1
        value = self.client.get(f"{key}:{int(now // window_seconds)}")
        return int(value) if value is not None else 0, reset_in

    def incr(self, key: str, amount: int = 1) -> int:
        return int(self.client.incrby(key, amount))

    def incr_many(self, amounts: dict[str, int], *, also_set: dict[str, bytes] | None = None,
                  ttl_seconds: int = 0) -> None:
        if amounts or also_set:
            pipe = self.client.pipeline(transaction=False)
            for key, amount in amounts.items():
                pipe.incrby(key, amount)
            for key, value in (also_set or {}).items():
                pipe.set(key, value, ex=ttl_seconds)
            pipe.execute()

    def claim(self, values: dict[str, bytes], ttl_seconds: int) -> dict[str, bytes | None]:
        pipe = self.client.pipeline(transaction=False)
        for key, value in values.items():
            # SET NX GET (Redis 7): sets only if absent, and answers the value it found.
            pipe.set(key, value, nx=True, get=True, ex=ttl_seconds)
        return {key: (old if isinstance(old, bytes) else None) for key, old in zip(values, pipe.execute(), strict=True)}

    def pop_counters(self, pattern_prefix: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for raw_key in self.client.scan_iter(match=f"{pattern_prefix}*", count=500):
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            # GETDEL is atomic: a click counted after this read lands in a fresh counter.
            value = self.client.getdel(key)
            if value is not None:
                found[key] = int(value)
        return found

    def ping(self) -> bool:
        return bool(self.client.ping())


# Keys under this prefix hold a process's own state (a login's failures), not copies of rows:
# CountersOnlyStore keeps them as it keeps its counters. (Without it the failed-login back-off,
# kernel.sessions, read nothing back and never slowed anyone down on PostgreSQL without Redis.)
STATE_PREFIX = "state:"


class CountersOnlyStore(MemoryStore):
    """In-process counters, rate-limit windows and `STATE_PREFIX` keys, and a cache that holds
    nothing: every other `get` misses, so every read goes to the database (see the module
    docstring for why)."""

    def get(self, key: str) -> bytes | None:
        return super().get(key) if key.startswith(STATE_PREFIX) else None

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        if key.startswith(STATE_PREFIX):
            super().set(key, value, ttl_seconds)


def make_store(redis_url: str | None, *, cache_in_process: bool = True) -> Store:
    """Redis when configured. Otherwise an in-process store, which caches only when
    `cache_in_process` (this process makes every write: settings.one_process_writes)."""
    if redis_url:
        return RedisStore(redis_url)
    return MemoryStore() if cache_in_process else CountersOnlyStore()


# The store travels with the unit of work: the runtime that opens a session (`Runtime.sessions`)
# puts a reference to its store in `session.info`, so the after-commit hooks that drop cache
# entries (catalog products, storefronts) drop them in the store the same runtime reads through,
# without a process-wide lookup and without every service passing the store down to them.
SESSION_STORE = "kernel.cache.store"


def session_store(session: Session) -> Store:
    """The cache store of the runtime that opened `session`."""
    provider: Callable[[], Store] | None = session.info.get(SESSION_STORE)
    if provider is None:
        raise RuntimeError("this session was not opened by a Runtime (kernel.runtime): it has no cache store")
    return provider()
