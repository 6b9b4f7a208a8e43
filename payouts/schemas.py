"""Payout shapes in and out. Amounts are `{amount, currency}` in integer minor units."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from kernel.schemas import KnownCurrency, MoneyOut, StrictModel

PayeeType = Literal["seller", "affiliate"]
BatchStatusName = Literal["awaiting_approval", "approved", "running", "completed", "cancelled"]
ItemStatusName = Literal["queued", "frozen", "sending", "paid", "failed", "skipped"]


class BatchCreateIn(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"currency": "USD", "preview": True}]})

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


def _state(count: int, amount: int) -> dict[str, Any]:
    return {"count": count, "amount": {"amount": amount, "currency": "USD"}}


PAYOUT_BATCH_EXAMPLE: dict[str, Any] = {
    "id": "01a2063a-c110-7ee6-a959-3f4d7fe3f978", "currency": "USD", "status": "completed", "rail": "manual",
    "minimum": {"amount": 1000, "currency": "USD"}, "planned_count": 4,
    "planned_total": {"amount": 33791, "currency": "USD"},
    "created_by": "key:01a2063a-b3f9-7f16-9870-922ba8c0837e", "created_at": "2026-12-04T16:43:46.833734Z",
    "approved_by": "key:01a2063a-b3f9-7f16-9870-922ba8c0837e", "approved_at": "2026-12-04T16:43:46.862205Z",
    "started_at": "2026-12-04T16:43:46.942968Z", "completed_at": "2026-12-04T16:43:47.016693Z",
    "cancelled_at": None, "items_total": 4, "items_done": 4,
    "progress": {"queued": _state(0, 0), "frozen": _state(0, 0), "sending": _state(0, 0),
                 "paid": _state(4, 33791), "failed": _state(0, 0), "skipped": _state(0, 0)},
    "transfer_group": None,
    "export_path": "payout-exports/payout-batch-01a2063a-c110-7ee6-a959-3f4d7fe3f978.csv",
}


class PayoutBatchOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PAYOUT_BATCH_EXAMPLE]})

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
