"""Payout tables: a batch per currency, one item per payee, and reconciliation reports.

Why the data, not luck, makes "nobody is paid twice" true:

- UNIQUE(batch_id, owner_type, owner_id): a payee has one item per batch.
- UNIQUE(open_currency): at most one open batch (not completed or cancelled) per currency, so
  two batches never compete for the same balances.
- An item's status only moves forward (`ITEM_TRANSITIONS`): a service guard, and a database
  trigger on both backends (migration 0005) that refuses any other update of `status`.
- The journal's UNIQUE(kind, reference_type, reference_id): `payout.freeze`, `payout.paid` and
  `payout.failed` happen at most once per item.
- UNIQUE(rail_reference): one Stripe transfer (or bank export line) settles at most one item.
- The rail's idempotency key is `payout-{item.id}` and the transfer's parameters are fixed when
  the item is frozen, so a re-send after any crash or timeout gets the same transfer back.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kernel.clock import clock
from kernel.db import Base, TimestampMixin, new_id

# The journal transactions of a payout item (see payouts/service/journal.py), reference ("payout_item", id).
KIND_FREEZE = "payout.freeze"
KIND_PAID = "payout.paid"
KIND_FAILED = "payout.failed"
PAYOUT_KINDS = (KIND_FREEZE, KIND_PAID, KIND_FAILED)
REFERENCE_TYPE = "payout_item"
# A transfer reversal that took back money a refund clawed from an already-paid payout
# (see payouts/service/recoveries.py), reference ("payout_recovery", id).
KIND_RECOVERED = "payout.recovered"
RECOVERY_REFERENCE_TYPE = "payout_recovery"


class BatchStatus(enum.StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"  # the run task is enqueued
    RUNNING = "running"  # a worker started it; items move through their states
    COMPLETED = "completed"  # every item is paid, failed or skipped
    CANCELLED = "cancelled"  # cancelled before it ran; nothing was frozen


OPEN_BATCH_STATUSES = (BatchStatus.AWAITING_APPROVAL, BatchStatus.APPROVED, BatchStatus.RUNNING)


class ItemStatus(enum.StrEnum):
    QUEUED = "queued"  # planned at batch creation; no money moved yet
    FROZEN = "frozen"  # the payee's available balance moved to in_transit (journal: payout.freeze)
    SENDING = "sending"  # handed to the rail at least once; the outcome is not known yet
    PAID = "paid"  # the rail confirmed it (journal: payout.paid)
    FAILED = "failed"  # the rail refused it; the money went back to available (journal: payout.failed)
    SKIPPED = "skipped"  # at freeze time the payee was blocked or below the minimum; nothing moved


# The only moves an item can make. Everything else (backwards, or skipping the rail) is refused
# by `payouts.service.states.advance` and by the database trigger of migration 0005.
ITEM_TRANSITIONS: dict[ItemStatus, frozenset[ItemStatus]] = {
    ItemStatus.QUEUED: frozenset({ItemStatus.FROZEN, ItemStatus.SKIPPED}),
    ItemStatus.FROZEN: frozenset({ItemStatus.SENDING, ItemStatus.FAILED}),
    ItemStatus.SENDING: frozenset({ItemStatus.PAID, ItemStatus.FAILED}),
    ItemStatus.PAID: frozenset(),
    ItemStatus.FAILED: frozenset(),
    ItemStatus.SKIPPED: frozenset(),
}
TERMINAL_ITEM_STATUSES = (ItemStatus.PAID, ItemStatus.FAILED, ItemStatus.SKIPPED)
IN_FLIGHT_ITEM_STATUSES = (ItemStatus.FROZEN, ItemStatus.SENDING)  # money sits in in_transit


def _in_list(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class PayoutBatch(TimestampMixin, Base):
    __tablename__ = "payout_batches"
    __table_args__ = (
        CheckConstraint(_in_list("status", BatchStatus), name="status_known"),
        # open_currency is the currency while the batch is open and NULL afterwards; NULLs never
        # collide, so this allows one open batch per currency on SQLite and PostgreSQL alike.
        UniqueConstraint("open_currency"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    currency: Mapped[str] = mapped_column(String(3), index=True)
    open_currency: Mapped[str | None] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), default=BatchStatus.AWAITING_APPROVAL.value, index=True)
    rail: Mapped[str] = mapped_column(String(16))  # stripe | manual
    minimum_amount: Mapped[int] = mapped_column(BigInteger)  # minor units, the threshold at creation
    planned_count: Mapped[int] = mapped_column(Integer)
    planned_amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    created_by: Mapped[str] = mapped_column(String(60))  # "key:<api key id>" or "schedule"
    approved_by: Mapped[str | None] = mapped_column(String(60))
    approved_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()
    export_path: Mapped[str | None] = mapped_column(String(500))  # manual rail: the CSV (the JSON beside it)
    export_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # the CSV's committed length (export.py)
    # The run lease (payouts/service/lease.py): who works on the batch and until when; a live worker
    # takes over a lease that expired (its worker died) and resumes the batch.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column()

    @property
    def transfer_group(self) -> str:
        return f"payout-batch-{self.id}"


class PayoutItem(Base):
    """One payee's payout in one batch. Amounts are integer minor units of `currency`."""

    __tablename__ = "payout_items"
    __table_args__ = (
        UniqueConstraint("batch_id", "owner_type", "owner_id"),
        UniqueConstraint("rail_reference"),
        CheckConstraint(_in_list("status", ItemStatus), name="status_known"),
        CheckConstraint("owner_type IN ('seller', 'affiliate')", name="owner_type_payee"),
        CheckConstraint("planned_amount > 0", name="planned_amount_positive"),
        CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        # Money moved only with a frozen amount; paid only with the rail's reference.
        CheckConstraint("status IN ('queued', 'skipped') OR amount IS NOT NULL", name="moved_has_amount"),
        CheckConstraint("status <> 'paid' OR rail_reference IS NOT NULL", name="paid_has_reference"),
        Index("ix_payout_items_batch_status", "batch_id", "status"),
        Index("ix_payout_items_owner", "owner_type", "owner_id", "id"),  # a payee's list, in key order (0017)
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payout_batches.id"))
    owner_type: Mapped[str] = mapped_column(String(16))  # seller | affiliate (ledger owner types)
    owner_id: Mapped[uuid.UUID] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    rail: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(12), default=ItemStatus.QUEUED.value)
    planned_amount: Mapped[int] = mapped_column(BigInteger)  # the available balance at batch creation
    amount: Mapped[int | None] = mapped_column(BigInteger)  # what was frozen (the balance at freeze time)
    # Snapshots taken at freeze time, so every (re-)send carries exactly the same parameters.
    payee_name: Mapped[str | None] = mapped_column(String(200))
    destination: Mapped[str | None] = mapped_column(String(200))  # Stripe account id or bank reference
    rail_reference: Mapped[str | None] = mapped_column(String(100))  # transfer id / export reference
    failure_reason: Mapped[str | None] = mapped_column(Text)  # why failed or skipped
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times handed to the rail
    last_error: Mapped[str | None] = mapped_column(String(500))  # the last retryable rail error
    next_attempt_at: Mapped[datetime | None] = mapped_column()  # backoff after a retryable error
    worker: Mapped[str | None] = mapped_column(String(100))  # host:pid that last worked on it
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())
    frozen_at: Mapped[datetime | None] = mapped_column()
    sending_at: Mapped[datetime | None] = mapped_column()
    settled_at: Mapped[datetime | None] = mapped_column()  # paid, failed or skipped
    updated_at: Mapped[datetime] = mapped_column(default=lambda: clock.now(), onupdate=lambda: clock.now())

    @property
    def idempotency_key(self) -> str:
        return f"payout-{self.id}"

    @property
    def display_amount(self) -> int:
        """The frozen amount once there is one, else the planned amount (minor units)."""
        return self.amount if self.amount is not None else self.planned_amount


class PayoutReconciliation(Base):
    """One comparison of a batch's paid items with what the rail says it did."""

    __tablename__ = "payout_reconciliations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payout_batches.id"), index=True)
    ran_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())
    rail: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # ok | mismatches
    paid_items: Mapped[int] = mapped_column(Integer)
    rail_records: Mapped[int] = mapped_column(Integer)  # transfers (Stripe) or export lines (manual)
    # [{"kind": "missing_at_rail" | "amount_differs" | "unknown_transfer" | ..., "item_id", "reference",
    #   "expected", "actual", "detail"}]
    mismatches: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class RecoveryStatus(enum.StrEnum):
    PENDING = "pending"  # planned; the rail has not confirmed the reversal yet
    RECOVERED = "recovered"  # the rail reversed it (journal: payout.recovered)
    FAILED = "failed"  # the rail refused; the balance stays negative and the next payout nets it


class PayoutRecovery(Base):
    """Money taken back from a connected account with a Stripe Transfer Reversal, because a refund
    clawed a share back after the payout that carried it had already left (the payee's available
    balance went negative). Amounts are integer minor units of the item's currency."""

    __tablename__ = "payout_recoveries"
    __table_args__ = (
        CheckConstraint(_in_list("status", RecoveryStatus), name="status_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status <> 'recovered' OR rail_reference IS NOT NULL", name="recovered_has_reference"),
        UniqueConstraint("rail_reference"),
        Index("ix_payout_recoveries_owner", "owner_type", "owner_id", "currency"),
        Index("ix_payout_recoveries_item", "payout_item_id"),
        Index("ix_payout_recoveries_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    payout_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payout_items.id"))  # whose transfer
    owner_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[uuid.UUID] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    transfer_id: Mapped[str] = mapped_column(String(100))  # the paid item's rail reference
    status: Mapped[str] = mapped_column(String(12), default=RecoveryStatus.PENDING.value)
    rail_reference: Mapped[str | None] = mapped_column(String(100))  # the reversal's id (trr_...)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())
    settled_at: Mapped[datetime | None] = mapped_column()

    @property
    def idempotency_key(self) -> str:
        return f"payout-recovery-{self.id}"


class PayoutHold(Base):
    """An operator's hold on a payee's payouts (a flagged account: fraud review, a dispute, a
    compliance check). While a hold is active the payee is blocked: previews list it with the
    reason and a running batch skips it; its balance stays where it is until the hold is lifted."""

    __tablename__ = "payout_holds"
    __table_args__ = (
        CheckConstraint("owner_type IN ('seller', 'affiliate')", name="owner_type_payee"),
        # One active hold per payee (NULL released_at); lifted holds stay as history.
        Index("uq_payout_holds_active", "owner_type", "owner_id", unique=True,
              sqlite_where=text("released_at IS NULL"), postgresql_where=text("released_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    owner_type: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[uuid.UUID] = mapped_column()
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())
    released_by: Mapped[str | None] = mapped_column(String(60))
    released_at: Mapped[datetime | None] = mapped_column()
