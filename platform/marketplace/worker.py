"""Celery entry point: `celery -A marketplace.worker worker|beat` (what `marketplace worker` and
`marketplace beat` run).

The worker's composition root: Celery needs the app as a module attribute, so this module (and
only this entry module) builds it when imported: every task and the beat schedule, from the
settings in the environment, installed as the app this process's tasks send through.
Each worker also runs the payout lease watch: a batch whose worker died resumes on a live
worker within about a minute, with or without beat (payouts/service/lease.py).
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_ready, worker_shutdown

from kernel.settings import get_settings, warn_insecure_defaults
from kernel.tasking import install_celery
from marketplace.bootstrap import build_celery
from payouts.service.lease import Watch
from payouts.service.runner import worker_name

app = build_celery(get_settings())
install_celery(app)

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
