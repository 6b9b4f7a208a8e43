"""The operator console (/console): today's figures, the approval queues, orders and refunds;
payout batches and holds (web.console_payouts); the growth report, the audit log and the ledger
audit (web.console_reports). Every page reads and writes through the HTTP API as the operator
(see web/__init__.py); buttons the operator's role may not use are not shown."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from web import console_payouts, console_reports
from web.api import Problem, seg
from web.console_base import form_of, items_of, next_cursor, operator_page, write
from web.pages import PageProblem, api_error, render

router = APIRouter(include_in_schema=False)
router.include_router(console_payouts.router)
router.include_router(console_reports.router)

ORDER_STATUSES = ("awaiting_payment", "paid", "cancelled")
APPLICANTS: dict[str, str] = {"sellers": "seller", "affiliates": "affiliate"}
ApplicantKind = Literal["sellers", "affiliates"]


@router.get("/console", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    """Today at a glance (orders, sales, fees, refunds, what is due to payees), what waits for a
    decision, and the latest payout batches."""
    api, viewer = await operator_page(request)
    today = await api.get("/v1/reports/today")
    if not today.ok:
        raise api_error(today)
    pending = {kind: await api.get(f"/v1/{kind}", status="pending", limit=50) for kind in APPLICANTS}
    batches = await api.get("/v1/payout-batches", limit=5)
    return render(request, "console/home.html", {
        "today": today.body,
        "pending": {kind: (len(items_of(answer)), bool(next_cursor(answer))) for kind, answer in pending.items()},
        "batches": items_of(batches),
    }, viewer=viewer)


# --- approval queues -------------------------------------------------------------------------


@router.get("/console/applications", response_class=HTMLResponse)
async def applications(request: Request, status: Literal["pending", "approved", "rejected"] = "pending",
                       ) -> HTMLResponse:
    """Sellers and affiliates that applied (pending: waiting for a decision), to approve or
    reject with a reason the applicant sees."""
    api, viewer = await operator_page(request)
    lists = {kind: await api.get(f"/v1/{kind}", status=status, limit=100) for kind in APPLICANTS}
    for answer in lists.values():
        if not answer.ok:
            raise api_error(answer)
    return render(request, "console/applications.html", {
        "status": status, "lists": {kind: items_of(answer) for kind, answer in lists.items()},
        "more": {kind: bool(next_cursor(answer)) for kind, answer in lists.items()},
    }, viewer=viewer)


@router.post("/console/{kind}/{applicant_id}/approve")
async def approve(request: Request, kind: ApplicantKind, applicant_id: uuid.UUID) -> RedirectResponse:
    form = await form_of(request)
    name = form.get("name") or APPLICANTS[kind]
    return await write(request, "POST", f"/v1/{kind}/{seg(applicant_id)}/approve", {}, "/console/applications",
                       f"{name} is approved.", form)


@router.post("/console/{kind}/{applicant_id}/reject")
async def reject(request: Request, kind: ApplicantKind, applicant_id: uuid.UUID) -> RedirectResponse:
    form = await form_of(request)
    name = form.get("name") or APPLICANTS[kind]
    return await write(request, "POST", f"/v1/{kind}/{seg(applicant_id)}/reject",
                       {"reason": form.get("reason", "").strip()}, "/console/applications",
                       f"{name} is rejected.", form)


# --- orders ----------------------------------------------------------------------------------


@router.get("/console/orders", response_class=HTMLResponse)
async def orders(request: Request, status: str = "", cursor: str = "") -> HTMLResponse:
    api, viewer = await operator_page(request)
    chosen = status if status in ORDER_STATUSES else ""
    answer = await api.get("/v1/orders", status=chosen, cursor=cursor, limit=25)
    if not answer.ok:
        raise api_error(answer)
    return render(request, "console/orders.html", {
        "orders": items_of(answer), "next_cursor": next_cursor(answer), "status": chosen,
        "statuses": ORDER_STATUSES,
    }, viewer=viewer)


@router.get("/console/orders/{order_id}", response_class=HTMLResponse)
async def order(request: Request, order_id: uuid.UUID) -> HTMLResponse:
    """One order: its lines, each seller's part and share, commissions, refunds; mark it paid
    (manual rail) and refund lines or all of it."""
    api, viewer = await operator_page(request)
    answer = await api.get(f"/v1/orders/{seg(order_id)}")
    if not answer.ok:
        raise api_error(answer)
    order_refunds = await api.get(f"/v1/orders/{seg(order_id)}/refunds")
    return render(request, "console/order.html", {
        "order": answer.body, "refunds": items_of(order_refunds), "sellers": await _seller_names(api, answer.body),
        "refund_key": uuid.uuid4().hex,
    }, viewer=viewer)


async def _seller_names(api: Any, order_body: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for share in order_body.get("shares", []):
        seller_id = str(share["seller_id"])
        if seller_id not in names:
            answer = await api.get(f"/v1/sellers/{seg(seller_id)}")
            names[seller_id] = answer.body.get("name", seller_id) if answer.ok else seller_id
    return names


@router.post("/console/orders/{order_id}/mark-paid")
async def mark_paid(request: Request, order_id: uuid.UUID) -> RedirectResponse:
    return await write(request, "POST", f"/v1/orders/{seg(order_id)}/mark-paid", {},
                       f"/console/orders/{order_id}", "The order is marked paid.")


@router.post("/console/orders/{order_id}/refunds")
async def refund(request: Request, order_id: uuid.UUID) -> RedirectResponse:
    """Refund the quantities typed per line, or (no quantity typed) everything left. The form's
    one-time key makes a double submission one refund."""
    form = await form_of(request)
    lines = []
    for name, value in form.items():
        if name.startswith("qty-") and value.strip() not in ("", "0"):
            quantity: Any = int(value) if value.strip().isdigit() else value
            lines.append({"order_line_id": name.removeprefix("qty-"), "quantity": quantity})
    body: dict[str, Any] = {"reason": form.get("reason", "").strip()}
    if lines:
        body["lines"] = lines
    elif form.get("everything") != "yes":
        raise PageProblem(Problem(422, "Nothing to refund", "type the units to refund on a line, or tick "
                                                             "\"Everything left of the order\""))
    key = form.get("idempotency_key") or ""
    return await write(request, "POST", f"/v1/orders/{seg(order_id)}/refunds", body,
                       f"/console/orders/{order_id}", "The refund is recorded.", form,
                       headers={"Idempotency-Key": key} if len(key) >= 8 else None)
