"""Kernel tasks. `system.heartbeat` proves the worker, broker and database work end to end."""

from __future__ import annotations

import socket
import uuid
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from kernel.clock import clock
from kernel.db import Base, new_id
from kernel.tasking import TaskSpec, task_session


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    worker: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(String(200))
    beat_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


def heartbeat(note: str = "") -> str:
    """Record that a worker ran a task; `marketplace worker` health and the tests read it."""
    with task_session() as session:
        row = WorkerHeartbeat(worker=socket.gethostname(), note=note[:200])
        session.add(row)
        session.flush()
        return str(row.id)


TASKS = (TaskSpec("system.heartbeat", heartbeat),)
