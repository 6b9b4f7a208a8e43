"""The timing loop the in-process measurements share (`history_timings`, `growth_timings`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """The median of `repeats` calls of `fn`, in milliseconds (one decimal): the median, not the
    mean, so one call slowed by a neighbour on a shared machine does not move the figure."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)
