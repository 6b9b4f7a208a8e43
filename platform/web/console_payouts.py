"""Console pages for payouts: batches from preview to approval, their live progress (an htmx
fragment the page polls while the batch runs), reconciliation and the bank export; payout holds."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from web.api import Api, seg
from web.console_base import form_of, items_of, next_cursor, operator_page, write
from web.pages import CSRF_COOKIE, Viewer, api_error, redirect, render, writing_api

router = APIRouter(include_in_schema=False)

BATCH_STATUSES = ("awaiting_approval", "approved", "running", "completed", "cancelled")
# How often the page asks for a batch's figures: every second while it runs; every few seconds
# while it waits for approval (another operator may approve it); never once it is over.
POLL_SECONDS = {"awaiting_approval": 3, "approved": 1, "running": 1}


@router.get("/console/payouts", response_class=HTMLResponse)
async def batches(request: Request, status: str = "", cursor: str = "", currency: str = "") -> HTMLResponse:
    """The payout batches, newest first; a preview of the next one for a currency."""
    api, viewer = await operator_page(request)
    chosen = status if status in BATCH_STATUSES else ""
    answer = await api.get("/v1/payout-batches", status=chosen, cursor=cursor, limit=25)
    if not answer.ok:
        raise api_error(answer)
    preview = None
    if currency:
        # A preview is sent as a POST that changes nothing: the session's own CSRF token goes along.
        reader = Api(request, csrf_token=request.cookies.get(CSRF_COOKIE, ""))
        previewed = await reader.post("/v1/payout-batches", {"currency": currency.strip().upper(), "preview": True})
        if not previewed.ok:
            raise api_error(previewed)
        preview = previewed.body
    return render(request, "console/payouts.html", {
        "batches": items_of(answer), "next_cursor": next_cursor(answer), "status": chosen,
        "statuses": BATCH_STATUSES, "preview": preview, "currency": currency.strip().upper() or "USD",
    }, viewer=viewer)


@router.post("/console/payouts")
async def create_batch(request: Request) -> RedirectResponse:
    form = await form_of(request)
    await operator_page(request)
    answer = await writing_api(request, form).post("/v1/payout-batches", {"currency": form.get("currency", "")})
    if not answer.ok:
        raise api_error(answer)
    return redirect(f"/console/payouts/{answer.body['id']}", "The payout batch is created.")


async def _batch_view(request: Request, batch_id: uuid.UUID) -> tuple[dict[str, Any], Viewer]:
    """The batch, its payees and its reconciliation: what the batch page shows, and what its
    fragment shows again at each poll (so nothing on the page goes stale while it runs)."""
    api, viewer = await operator_page(request)
    answer = await api.get(f"/v1/payout-batches/{seg(batch_id)}")
    if not answer.ok:
        raise api_error(answer)
    items = await api.get(f"/v1/payout-batches/{seg(batch_id)}/items", limit=200)
    reconciliation = await api.get(f"/v1/payout-batches/{seg(batch_id)}/reconciliation")
    return {
        "batch": answer.body, "poll": POLL_SECONDS.get(answer.body["status"]), "items": items_of(items),
        "more_items": bool(next_cursor(items)), "reconciliation": reconciliation.body if reconciliation.ok else None,
    }, viewer


@router.get("/console/payouts/{batch_id}", response_class=HTMLResponse)
async def batch(request: Request, batch_id: uuid.UUID) -> HTMLResponse:
    """A batch: status, approve / cancel / run again, live progress, its items, the
    reconciliation with the rail and the bank export."""
    context, viewer = await _batch_view(request, batch_id)
    return render(request, "console/batch.html", context, viewer=viewer)


@router.get("/console/payouts/{batch_id}/progress", response_class=HTMLResponse)
async def progress(request: Request, batch_id: uuid.UUID) -> HTMLResponse:
    """The batch page's body as a fragment (htmx polls it while the batch waits or runs; once it
    is over the fragment comes back without the trigger, and the polling ends)."""
    context, viewer = await _batch_view(request, batch_id)
    return render(request, "console/_progress.html", context, viewer=viewer)


@router.post("/console/payouts/{batch_id}/{action}")
async def batch_action(request: Request, batch_id: uuid.UUID,
                       action: Literal["approve", "cancel", "run", "reconcile"]) -> RedirectResponse:
    said = {"approve": "The batch is approved: its run has started.", "cancel": "The batch is cancelled.",
            "run": "Another run of the batch is queued.",
            "reconcile": "Reconciliation with the rail is queued: its result shows below."}[action]
    return await write(request, "POST", f"/v1/payout-batches/{seg(batch_id)}/{action}", {},
                       f"/console/payouts/{batch_id}", said)


@router.get("/console/payouts/{batch_id}/export")
async def export(request: Request, batch_id: uuid.UUID, format: Literal["csv", "json"] = "csv") -> Response:
    """The manual rail's bank export, downloaded through the API."""
    api, _ = await operator_page(request)
    answer = await api.call("GET", f"/v1/payout-batches/{seg(batch_id)}/export", params={"format": format},
                            headers={"Accept": "*/*"})
    if not answer.ok:
        raise api_error(answer)
    body = answer.body if isinstance(answer.body, str) else json.dumps(answer.body, indent=2)
    return Response(body, media_type=answer.headers.get("content-type", "text/csv"), headers={
        "Content-Disposition": answer.headers.get("content-disposition",
                                                  f'attachment; filename="payout-batch-{batch_id}.{format}"')})


# --- holds -----------------------------------------------------------------------------------


@router.get("/console/holds", response_class=HTMLResponse)
async def holds(request: Request, active: str = "true", cursor: str = "") -> HTMLResponse:
    """Payout holds (in force, or all), release one; place one on a seller or an affiliate."""
    api, viewer = await operator_page(request)
    answer = await api.get("/v1/payout-holds", active="true" if active == "true" else None, cursor=cursor, limit=50)
    if not answer.ok:
        raise api_error(answer)
    payees = {kind: items_of(await api.get(f"/v1/{kind}", status="approved", limit=200))
              for kind in ("sellers", "affiliates")}
    names = {str(p["id"]): p["name"] for group in payees.values() for p in group}
    return render(request, "console/holds.html", {
        "holds": items_of(answer), "next_cursor": next_cursor(answer), "active": active == "true",
        "payees": payees, "names": names,
    }, viewer=viewer)


@router.post("/console/holds")
async def place_hold(request: Request) -> RedirectResponse:
    form = await form_of(request)
    owner_type, _, owner_id = form.get("payee", "").partition(":")
    return await write(request, "POST", "/v1/payout-holds",
                       {"owner_type": owner_type, "owner_id": owner_id, "reason": form.get("reason", "").strip()},
                       "/console/holds", "The hold is placed: batches skip this payee until it is released.", form)


@router.post("/console/holds/{hold_id}/release")
async def release_hold(request: Request, hold_id: uuid.UUID) -> RedirectResponse:
    return await write(request, "POST", f"/v1/payout-holds/{seg(hold_id)}/release", {}, "/console/holds",
                       "The hold is released: the next batch pays this payee.")
