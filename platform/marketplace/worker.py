"""Celery entry point: `celery -A marketplace.worker worker` (what `marketplace worker` runs).

Imports every domain's tasks so the worker knows them all (the assembly rule), and runs the
payout lease watch in each worker: a batch whose worker died resumes on a live worker within
about a minute, with or without beat (payouts/lease.py).
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready, worker_shutdown

from kernel.settings import get_settings, warn_insecure_defaults
from kernel.tasking import celery_app
from payouts.lease import Watch
from payouts.runner import worker_name

celery_app.loader.import_default_modules()

app = celery_app

_watches: list[Watch] = []


@worker_ready.connect
def _on_worker_ready(**_kwargs: Any) -> None:
    warn_insecure_defaults(get_settings())  # workers deliver the webhooks
    watch = Watch(get_settings(), worker_name())
    watch.start()
    _watches.append(watch)


@worker_shutdown.connect
def _on_worker_shutdown(**_kwargs: Any) -> None:
    while _watches:
        _watches.pop().stop()
