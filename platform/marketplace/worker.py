"""Celery entry point: `celery -A marketplace.worker worker|beat` (what `marketplace worker` and
`marketplace beat` run).

The worker's composition root: Celery needs the app as a module attribute, so this module (and
only this entry module) builds it when imported: every task and the beat schedule, from the
settings in the environment, installed as the app this process's tasks send through.
"""

from __future__ import annotations

from kernel.settings import get_settings
from kernel.tasking import install_celery
from marketplace.bootstrap import build_celery

app = build_celery(get_settings())
install_celery(app)
