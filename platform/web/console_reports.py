"""Console pages that read: the growth report with its charts, the audit log, the ledger audit."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from web.console_base import items_of, next_cursor, operator_page
from web.pages import api_error, money, render

router = APIRouter(include_in_schema=False)

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _label(row: dict[str, Any], several_currencies: bool) -> str:
    name = str(row.get("name") or row.get("group_id") or "")
    return f"{name} ({row['currency']})" if several_currencies else name


def growth_charts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's rows as the charts' (label, value) pairs and their written values: the three
    levers, close ratio, cost per new customer, lead sources; the partners falling away."""
    several = len({row["currency"] for row in rows}) > 1

    def amount(value: int, currency: str) -> str:  # the chart's title names a single currency
        return money(value, currency) if several else money(value, currency).removeprefix(f"{currency} ")

    def chart(key: str, text: Any = None, skip_none: bool = False) -> dict[str, Any]:
        picked = [row for row in rows if not (skip_none and row.get(key) is None)]
        values = [(_label(row, several), row.get(key) or 0) for row in picked]
        return {"rows": values, "text": [text(row) for row in picked] if text else None}

    sources: dict[str, int] = defaultdict(int)
    for row in rows:
        for source, count in (row.get("sources") or {}).items():
            sources[source] += int(count)
    return {
        "customers": chart("customers", lambda r: f"{r['customers']} ({r['new_customers']} new)"),
        "average_order": chart("average_order_value", lambda r: amount(r["average_order_value"], r["currency"])),
        "frequency": chart("purchase_frequency", lambda r: f"{r['purchase_frequency']:.2f}"),
        "close_ratio": chart("close_ratio", lambda r: f"{r['close_ratio'] * 100:.1f}% of {r['clicks']}",
                             skip_none=True),
        "cost_per_new": chart("commission_per_new_customer",
                              lambda r: amount(r["commission_per_new_customer"], r["currency"]), skip_none=True),
        "sources": {"rows": sorted(sources.items(), key=lambda kv: -kv[1]), "text": None},
        "falling_away": [row for row in rows if row.get("falling_away")],
        "currency": "" if several or not rows else f" ({rows[0]['currency']})",
    }


@router.get("/console/growth", response_class=HTMLResponse)
async def growth(request: Request, group_by: Literal["seller", "affiliate", "storefront"] = "affiliate",
                 days: int = 90) -> HTMLResponse:
    api, viewer = await operator_page(request)
    days = min(max(days, 1), 730)
    answer = await api.get("/v1/reports/growth", group_by=group_by, days=days)
    if not answer.ok:
        raise api_error(answer)
    rows = list(answer.body or [])
    return render(request, "console/growth.html", {
        "rows": rows, "charts": growth_charts(rows), "group_by": group_by, "days": days,
    }, viewer=viewer)


AUDIT_FILTERS = ("action", "object_type", "object_id", "since", "until")


@router.get("/console/audit", response_class=HTMLResponse)
async def audit_log(request: Request, action: str = "", object_type: str = "", object_id: str = "",
                    since: str = "", until: str = "", cursor: str = "") -> HTMLResponse:
    """Who did what, newest first, filtered by action, object and day."""
    api, viewer = await operator_page(request)
    filters = {"action": action.strip(), "object_type": object_type.strip(), "object_id": object_id.strip(),
               "since": since if DATE.match(since) else "", "until": until if DATE.match(until) else ""}
    answer = await api.get("/v1/audit-events", cursor=cursor, limit=50, **{
        **filters, "since": f"{filters['since']}T00:00:00Z" if filters["since"] else "",
        "until": f"{filters['until']}T23:59:59.999999Z" if filters["until"] else ""})
    if not answer.ok:
        raise api_error(answer)
    extra = urlencode({k: v for k, v in filters.items() if v})
    return render(request, "console/audit.html", {
        "events": items_of(answer), "next_cursor": next_cursor(answer), "filters": filters,
        "pager_extra": f"&{extra}" if extra else "",
    }, viewer=viewer)


@router.get("/console/ledger", response_class=HTMLResponse)
async def ledger_audit(request: Request, run: str = "") -> HTMLResponse:
    """The ledger audit, run on demand (it reads the whole journal): pass or fail per check."""
    api, viewer = await operator_page(request)
    result = None
    if run:
        answer = await api.get("/v1/ledger/audit")
        if not answer.ok:
            raise api_error(answer)
        result = answer.body
    return render(request, "console/ledger.html", {"result": result}, viewer=viewer)
