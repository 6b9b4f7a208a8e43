"""Payout shapes in and out. Amounts are `{amount, currency}` in integer minor units."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from kernel.schemas import KnownCurrency, MoneyOut, StrictModel

PayeeType = Literal["seller", "affiliate"]
BatchStatusName = Literal["awaiting_approval", "approved", "running", "completed", "cancelled"]
ItemStatusName = Literal["queued", "frozen", "sending", "paid", "failed", "skipped"]


class BatchCreateIn(StrictModel):
    currency: KnownCurrency
    preview: StrictBool = Field(default=False, description="true: only say who would be paid; nothing is created")


class PreviewPayeeOut(BaseModel):
    owner_type: PayeeType
    owner_id: uuid.UUID
    name: str | None
    amount: MoneyOut = Field(description="the available balance now (negative after a refund that followed a payout)")
    reason: str | None = Field(description="why the payee is blocked or below the minimum; null when payable")


class PayoutPreviewOut(BaseModel):
    currency: str
    rail: Literal["stripe", "manual"]
    minimum: MoneyOut
    total: MoneyOut = Field(description="what the payees would get in all")
    payees: list[PreviewPayeeOut] = Field(description="who would be paid, and how much")
    below_minimum: list[PreviewPayeeOut]
    blocked: list[PreviewPayeeOut]


class StateTotalOut(BaseModel):
    count: int
    amount: MoneyOut


class PayoutBatchOut(BaseModel):
    id: uuid.UUID
    currency: str
    status: BatchStatusName
    rail: Literal["stripe", "manual"]
    minimum: MoneyOut
    planned_count: int = Field(description="payees planned at creation")
    planned_total: MoneyOut
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    items_total: int
    items_done: int = Field(description="items paid, failed or skipped")
    progress: dict[ItemStatusName, StateTotalOut] = Field(
        description="count and amount per item status (frozen amounts; planned ones for queued / skipped)"
    )
    transfer_group: str | None = Field(description="Stripe: the transfer_group of the batch's transfers")
    export_path: str | None = Field(description="manual rail: the bank export CSV (a JSON file sits beside it)")


class PayoutOut(BaseModel):
    id: uuid.UUID
    batch_id: uuid.UUID
    owner_type: PayeeType
    owner_id: uuid.UUID
    payee_name: str | None
    status: ItemStatusName
    amount: MoneyOut = Field(description="the frozen amount, or the planned one before the freeze")
    rail: Literal["stripe", "manual"]
    rail_reference: str | None = Field(description="Stripe transfer id, or the bank transfer reference")
    failure_reason: str | None
    attempts: int
    last_error: str | None = Field(description="the last retryable rail error; the payout is retried")
    created_at: datetime
    frozen_at: datetime | None
    settled_at: datetime | None


class CoveredCommissionOut(BaseModel):
    commission_id: uuid.UUID
    order_id: uuid.UUID
    amount: MoneyOut = Field(description="the commission less what refunds reversed")


class CoveredSaleOut(BaseModel):
    sub_order_id: uuid.UUID
    order_id: uuid.UUID
    amount: MoneyOut = Field(description="the seller's net share of the sale, less what refunds took back")


class HoldIn(StrictModel):
    owner_type: PayeeType
    owner_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=500, description="why; shown in previews and to operators")


class HoldOut(BaseModel):
    id: uuid.UUID
    owner_type: PayeeType
    owner_id: uuid.UUID
    reason: str
    active: bool
    created_by: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None


class RecoveryOut(BaseModel):
    id: uuid.UUID
    amount: MoneyOut = Field(description="taken back from this payout's transfer")
    status: Literal["pending", "recovered", "failed"]
    rail_reference: str | None = Field(description="the Stripe transfer reversal id (trr_...)")
    failure_reason: str | None = Field(description="why Stripe refused; the next payout nets the amount instead")
    created_at: datetime
    settled_at: datetime | None


class PayoutDetailOut(PayoutOut):
    commissions: list[CoveredCommissionOut] = Field(description="affiliates: the commissions this payout covers")
    sales: list[CoveredSaleOut] = Field(description="sellers: the sales (sub-orders) this payout covers")
    recoveries: list[RecoveryOut] = Field(
        description="Stripe transfer reversals of this payout: refunds of sales it covered, taken back")


class MismatchOut(BaseModel):
    kind: str
    item_id: str | None
    reference: str | None
    expected: int | str | None
    actual: int | str | None
    detail: str


class ReconciliationOut(BaseModel):
    batch_id: uuid.UUID
    status: Literal["ok", "mismatches", "not_run"]
    ran_at: datetime | None
    paid_items: int
    rail_records: int = Field(description="transfers listed by Stripe, or lines of the bank export")
    mismatches: list[MismatchOut]
