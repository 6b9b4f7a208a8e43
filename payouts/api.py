"""Payout routes: operators plan, approve and watch batches; payees read their payouts. Thin."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from kernel.auth import Principal, Role
from kernel.deps import CurrentPrincipal, DbSession, OperatorPrincipal, StrictQuery, get_runtime
from kernel.errors import Forbidden
from kernel.runtime import Runtime
from kernel.schemas import Page, decode_cursor, encode_cursor
from kernel.tasking import enqueue_after_commit
from payouts.errors import ExportNotFound
from payouts.schemas import (
    BatchCreateIn,
    BatchStatusName,
    HoldIn,
    HoldOut,
    ItemStatusName,
    PayoutBatchOut,
    PayoutDetailOut,
    PayoutOut,
    PayoutPreviewOut,
    ReconciliationOut,
)
from payouts.service import export, holds, planning, queries, reconcile, views

router = APIRouter(prefix="/v1", dependencies=[StrictQuery])
LimitQuery = Annotated[int, Query(ge=1, le=200)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _by(principal: Principal) -> str:
    return principal.actor  # "person:<id>" for a person's key or session, else "key:<api key id>"


def _batch_out(session: DbSession, batch_id: uuid.UUID) -> PayoutBatchOut:
    session.flush()
    batch = queries.get_batch(session, batch_id)
    return views.batch_out(batch, queries.progress(session, [batch.id])[batch.id])


@router.post(
    # Two shapes by status, each declared exactly (a union response_model would blur them).
    "/payout-batches", status_code=201, response_model=None, tags=["payouts"],
    responses={200: {"model": PayoutPreviewOut, "description": "`preview: true`: the plan; nothing is created"},
               201: {"model": PayoutBatchOut, "description": "the batch, awaiting approval (or approved)"}},
)
def create_batch(
    body: BatchCreateIn, session: DbSession, principal: OperatorPrincipal, runtime: RuntimeDep, response: Response
) -> PayoutBatchOut | PayoutPreviewOut:
    """Operator: preview (`preview: true`: who would be paid, how much, who is below the minimum
    and who is blocked, and why) or create a payout batch for one currency. A created batch
    awaits approval (or is approved at once when the platform auto-approves)."""
    if body.preview:
        response.status_code = 200
        return views.preview_out(planning.preview(session, runtime.settings, runtime.rail.name, body.currency))
    batch, _ = planning.create_batch(session, runtime.settings, runtime.rail.name, body.currency,
                                     created_by=_by(principal))
    return _batch_out(session, batch.id)


@router.get("/payout-batches", response_model=Page[PayoutBatchOut], tags=["payouts"])
def list_batches(
    session: DbSession, principal: OperatorPrincipal, status: BatchStatusName | None = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None, cursor: str | None = None,
    limit: LimitQuery = 50,
) -> Page[PayoutBatchOut]:
    """Operator: payout batches, newest first, with their progress."""
    rows = queries.list_batches(session, status=status, currency=currency, after=decode_cursor(cursor), limit=limit)
    page = rows[:limit]
    progress = queries.progress(session, [b.id for b in page])
    return Page(items=[views.batch_out(b, progress[b.id]) for b in page],
                next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None)


@router.get("/payout-batches/{batch_id}", response_model=PayoutBatchOut, tags=["payouts"])
def get_batch(batch_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> PayoutBatchOut:
    """Operator: a batch's status, and counts and amounts per item state (live while it runs)."""
    return _batch_out(session, batch_id)


@router.post("/payout-batches/{batch_id}/approve", response_model=PayoutBatchOut, tags=["payouts"])
def approve_batch(batch_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> PayoutBatchOut:
    """Operator: approve the batch; its run is enqueued (a Celery worker, or in-process without a broker)."""
    planning.approve(session, batch_id, approved_by=_by(principal))
    return _batch_out(session, batch_id)


@router.post("/payout-batches/{batch_id}/cancel", response_model=PayoutBatchOut, tags=["payouts"])
def cancel_batch(batch_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> PayoutBatchOut:
    """Operator: cancel a batch that has not started; nothing was frozen, nothing moves."""
    planning.cancel(session, batch_id)
    return _batch_out(session, batch_id)


@router.post("/payout-batches/{batch_id}/run", status_code=202, response_model=PayoutBatchOut, tags=["payouts"])
def run_batch(batch_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> PayoutBatchOut:
    """Operator: enqueue another run of an approved or running batch (resume after a crash, retry
    after rail errors). Safe at any time: runs share the items and never pay one twice."""
    planning.request_run(session, batch_id)
    return _batch_out(session, batch_id)


@router.get("/payout-batches/{batch_id}/items", response_model=Page[PayoutOut], tags=["payouts"])
def list_batch_items(
    batch_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal, status: ItemStatusName | None = None,
    cursor: str | None = None, limit: LimitQuery = 50,
) -> Page[PayoutOut]:
    """Operator: the batch's items (one per payee), newest first."""
    queries.get_batch(session, batch_id)
    rows = queries.list_items(session, principal=principal, batch_id=batch_id, status=status,
                              after=decode_cursor(cursor), limit=limit)
    return Page(items=[views.payout_out(i) for i in rows[:limit]],
                next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None)


@router.post("/payout-batches/{batch_id}/reconcile", status_code=202, response_model=ReconciliationOut,
             tags=["payouts"])
def reconcile_batch(batch_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> ReconciliationOut:
    """Operator: compare the batch's paid items with the rail again (a task; read the result below)."""
    queries.get_batch(session, batch_id)
    enqueue_after_commit(session, "payouts.reconcile", str(batch_id))
    return views.reconciliation_out(batch_id, reconcile.latest(session, batch_id))


@router.get("/payout-batches/{batch_id}/reconciliation", response_model=ReconciliationOut, tags=["payouts"])
def get_reconciliation(batch_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> ReconciliationOut:
    """Operator: the latest comparison of the batch with the rail (`not_run` before the first)."""
    queries.get_batch(session, batch_id)
    return views.reconciliation_out(batch_id, reconcile.latest(session, batch_id))


EXPORT_TYPES = {"csv": "text/csv", "json": "application/json"}


@router.get(
    "/payout-batches/{batch_id}/export", tags=["payouts"], response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/json": {}},
                     "description": "the manual rail's bank export of the batch"}},
)
def download_export(
    batch_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal, runtime: RuntimeDep,
    format: Annotated[Literal["csv", "json"], Query(description="csv: one line per paid item; json: "
                                                                "the same with count and total (once completed)")]
    = "csv",
) -> Response:
    """Operator, manual rail: the bank export to wire from (while the batch runs, the CSV holds the
    items recorded paid so far). 404 when the batch has none (yet): Stripe pays by transfer."""
    batch = queries.get_batch(session, batch_id)
    data = export.download(runtime.settings, batch, format)
    if data is None:
        raise ExportNotFound(f"payout batch {batch_id} has no {format} export"
                             + (" (the Stripe rail pays by transfer)" if batch.rail == "stripe" else " yet"))
    return Response(data, media_type=EXPORT_TYPES[format], headers={
        "Content-Disposition": f'attachment; filename="payout-batch-{batch_id}.{format}"'})


def _payee_or_operator(principal: CurrentPrincipal) -> Principal:
    if principal.role not in (Role.SELLER, Role.AFFILIATE, Role.OPERATOR):
        raise Forbidden("payouts are for sellers, affiliates and operators")
    return principal


PayeeOrOperator = Annotated[Principal, Depends(_payee_or_operator)]


@router.get("/payouts", response_model=Page[PayoutOut], tags=["payouts"])
def list_payouts(
    session: DbSession, principal: PayeeOrOperator, status: ItemStatusName | None = None,
    cursor: str | None = None, limit: LimitQuery = 50,
) -> Page[PayoutOut]:
    """A seller's or affiliate's own payouts (an operator sees every payee's), newest first."""
    rows = queries.list_items(session, principal=principal, status=status, after=decode_cursor(cursor), limit=limit)
    return Page(items=[views.payout_out(i) for i in rows[:limit]],
                next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None)


@router.get("/payouts/{payout_id}", response_model=PayoutDetailOut, tags=["payouts"])
def get_payout(payout_id: uuid.UUID, session: DbSession, principal: PayeeOrOperator) -> PayoutDetailOut:
    """One payout with the commissions (affiliates) or sales (sellers) it covers."""
    item = queries.get_item(session, principal, payout_id)
    return views.payout_detail(item, queries.covered_commissions(session, item.id),
                               queries.covered_sub_orders(session, item.id), queries.recoveries_of(session, item.id))


@router.post("/payout-holds", status_code=201, response_model=HoldOut, tags=["payout holds"],
             responses={404: {"description": "No seller or affiliate with this owner_id"}})
def place_hold(body: HoldIn, session: DbSession, principal: OperatorPrincipal) -> HoldOut:
    """Operator: hold a flagged payee's payouts. Previews list it as blocked with the reason and
    batches skip it until the hold is lifted; its balance stays put. 409 if already held."""
    return views.hold_out(holds.place_hold(session, body.owner_type, body.owner_id, body.reason, _by(principal)))


@router.post("/payout-holds/{hold_id}/release", response_model=HoldOut, tags=["payout holds"])
def release_hold(hold_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> HoldOut:
    """Operator: lift a hold; the next batch pays the payee's balance."""
    return views.hold_out(holds.release_hold(session, hold_id, _by(principal)))


@router.get("/payout-holds", response_model=Page[HoldOut], tags=["payout holds"])
def list_holds(
    session: DbSession, principal: OperatorPrincipal, active: bool | None = None, cursor: str | None = None,
    limit: LimitQuery = 50,
) -> Page[HoldOut]:
    """Operator: payout holds, newest first, a page at a time (`active=true`: only those in force)."""
    rows = holds.list_holds(session, active=active, after=decode_cursor(cursor), limit=limit)
    page = rows[:limit]
    return Page(items=[views.hold_out(h) for h in page],
                next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else None)
