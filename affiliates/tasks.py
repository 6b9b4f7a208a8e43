"""Celery tasks of the affiliates package (thin: the rules are in affiliates.service.links)."""

from __future__ import annotations

import structlog

from affiliates.service import traffic
from affiliates.service.links import add_daily_counts, parse_counters, pop_all_counters, restore_counters
from kernel.runtime import get_runtime
from kernel.tasking import BeatSpec, TaskSpec, task_session

log = structlog.get_logger(__name__)

FLUSH_CLICKS = "affiliates.flush_clicks"
FLUSH_TRAFFIC = "affiliates.flush_traffic"
FLUSH_INTERVAL_SECONDS = 60.0


def flush_clicks() -> int:
    """Move the click, hit and bot-hit counters from Redis to `referral_click_daily`; returns the
    counted clicks flushed.

    Each counter is read-and-reset atomically (GETDEL), so a click counted while this runs lands
    in a fresh counter for the next flush. If the database transaction fails, the popped counts
    are added back to Redis before the error propagates, so no click is lost or counted twice
    (a crash between the pop and the commit can still lose that batch: at most one minute of
    counts, which are statistics, never money; the click rows that attribution uses are written
    by the request itself). Two flushes running at once pop disjoint counts and add them."""
    store = get_runtime().store
    counters = pop_all_counters(store)
    if not counters:
        return 0
    try:
        with task_session() as session:
            flushed = add_daily_counts(session, parse_counters(counters))
    except Exception:
        restore_counters(store, counters)
        raise
    log.info("clicks_flushed", clicks=flushed, counters=len(counters))
    return flushed


def flush_traffic() -> int:
    """Move the funnel's traffic counters (visits, product views, carts, checkouts) from the
    store to `growth_traffic_daily` (affiliates.service.traffic); returns the rows touched."""
    store = get_runtime().store
    with task_session() as session:
        rows = traffic.flush(session, store)
    if rows:
        log.info("traffic_flushed", rows=rows)
    return rows


TASKS = (TaskSpec(FLUSH_CLICKS, flush_clicks), TaskSpec(FLUSH_TRAFFIC, flush_traffic))
BEAT = (BeatSpec("affiliates-flush-clicks", FLUSH_CLICKS, FLUSH_INTERVAL_SECONDS),
        BeatSpec("affiliates-flush-traffic", FLUSH_TRAFFIC, FLUSH_INTERVAL_SECONDS))
