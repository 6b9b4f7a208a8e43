"""Rendering payout rows into their API shapes."""

from __future__ import annotations

import uuid
from typing import Any

from kernel.schemas import money
from payouts.models import PayoutBatch, PayoutHold, PayoutItem, PayoutReconciliation, PayoutRecovery
from payouts.schemas import (
    CoveredCommissionOut,
    CoveredSaleOut,
    HoldOut,
    MismatchOut,
    PayoutBatchOut,
    PayoutDetailOut,
    PayoutOut,
    PayoutPreviewOut,
    PreviewPayeeOut,
    ReconciliationOut,
    RecoveryOut,
    StateTotalOut,
)
from payouts.service.planning import Preview, PreviewLine
from payouts.service.queries import Progress


def _line(line: PreviewLine, currency: str) -> PreviewPayeeOut:
    return PreviewPayeeOut(owner_type=line.owner_type, owner_id=line.owner_id, name=line.name,
                           amount=money(line.amount, currency), reason=line.reason)


def preview_out(plan: Preview) -> PayoutPreviewOut:
    return PayoutPreviewOut(
        currency=plan.currency, rail=plan.rail, minimum=money(plan.minimum, plan.currency),
        total=money(plan.total, plan.currency),
        payees=[_line(x, plan.currency) for x in plan.payable],
        below_minimum=[_line(x, plan.currency) for x in plan.below_minimum],
        blocked=[_line(x, plan.currency) for x in plan.blocked],
    )


def batch_out(batch: PayoutBatch, progress: Progress) -> PayoutBatchOut:
    c = batch.currency
    return PayoutBatchOut(
        id=batch.id, currency=c, status=batch.status, rail=batch.rail,
        minimum=money(batch.minimum_amount, c), planned_count=batch.planned_count,
        planned_total=money(batch.planned_amount, c), created_by=batch.created_by, created_at=batch.created_at,
        approved_by=batch.approved_by, approved_at=batch.approved_at, started_at=batch.started_at,
        completed_at=batch.completed_at, cancelled_at=batch.cancelled_at,
        items_total=progress.total, items_done=progress.done,
        progress={status: StateTotalOut(count=t.count, amount=money(t.amount, c))
                  for status, t in progress.by_status.items()},
        transfer_group=batch.transfer_group if batch.rail == "stripe" else None,
        export_path=batch.export_path,
    )


def _item_fields(item: PayoutItem) -> dict[str, Any]:
    return {
        "id": item.id, "batch_id": item.batch_id, "owner_type": item.owner_type, "owner_id": item.owner_id,
        "payee_name": item.payee_name, "status": item.status, "amount": money(item.display_amount, item.currency),
        "rail": item.rail, "rail_reference": item.rail_reference, "failure_reason": item.failure_reason,
        "attempts": item.attempts, "last_error": item.last_error, "created_at": item.created_at,
        "frozen_at": item.frozen_at, "settled_at": item.settled_at,
    }


def payout_out(item: PayoutItem) -> PayoutOut:
    return PayoutOut(**_item_fields(item))


def payout_detail(
    item: PayoutItem, commissions: list[Any], sub_orders: list[Any], recoveries: list[PayoutRecovery]
) -> PayoutDetailOut:
    return PayoutDetailOut(
        **_item_fields(item),
        commissions=[CoveredCommissionOut(commission_id=c.id, order_id=c.order_id,
                                          amount=money(c.amount - c.reversed_amount, c.currency))
                     for c in commissions],
        # Net of refunds so far, like the commissions above (a refund after the payout also shows
        # as a recovery below).
        sales=[CoveredSaleOut(sub_order_id=s.id, order_id=s.order_id,
                              amount=money(s.seller_net_amount - s.refunded_shipping_amount
                                           - sum(line.refunded_seller_net for line in s.lines),
                                           s.currency))
               for s in sub_orders],
        recoveries=[RecoveryOut(id=r.id, amount=money(r.amount, r.currency), status=r.status,
                                rail_reference=r.rail_reference, failure_reason=r.failure_reason,
                                created_at=r.created_at, settled_at=r.settled_at) for r in recoveries],
    )


def reconciliation_out(batch_id: uuid.UUID, found: PayoutReconciliation | None) -> ReconciliationOut:
    if found is None:
        return ReconciliationOut(batch_id=batch_id, status="not_run", ran_at=None, paid_items=0, rail_records=0,
                                 mismatches=[])
    return ReconciliationOut(
        batch_id=batch_id, status=found.status, ran_at=found.ran_at,
        paid_items=found.paid_items, rail_records=found.rail_records,
        mismatches=[MismatchOut(**m) for m in found.mismatches],
    )


def hold_out(hold: PayoutHold) -> HoldOut:
    return HoldOut(
        id=hold.id, owner_type=hold.owner_type, owner_id=hold.owner_id,
        reason=hold.reason, active=hold.released_at is None, created_by=hold.created_by,
        created_at=hold.created_at, released_by=hold.released_by, released_at=hold.released_at,
    )
