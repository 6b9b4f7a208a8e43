"""Celery entry point: `celery -A marketplace.worker worker` (what `marketplace worker` runs).

Imports every domain's tasks so the worker knows them all (the assembly rule).
"""

from __future__ import annotations

from kernel.tasking import celery_app

celery_app.loader.import_default_modules()

app = celery_app
