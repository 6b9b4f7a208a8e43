"""The affiliate portal (/portal): see web/__init__.py for how pages work. Home (balance,
commissions this month, clicks), sellers' programs to join, the storefront's listings, referral
links with their click charts and coupons, commissions, payouts and the team (web.seller_kit).
Every action shown is one the viewer's role may take."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from web.api import Api, seg
from web.pages import api_error, money, page_viewer, redirect, render, writing_api
from web.seller_kit import every, payouts_router, read, read_or, send, team_router

router = APIRouter(include_in_schema=False)
CHART_DAYS = 14  # the days the click and order charts show


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _created(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(item["created_at"]).replace("Z", "+00:00"))


def _totals(commissions: list[dict[str, Any]]) -> list[str]:
    """Commission amounts less what refunds reversed, per currency, formatted."""
    sums: dict[str, int] = defaultdict(int)
    for c in commissions:
        sums[c["amount"]["currency"]] += c["amount"]["amount"] - c["reversed"]["amount"]
    return [money(amount, currency) for currency, amount in sorted(sums.items())]


def _days(today: date, count: int = CHART_DAYS) -> list[str]:
    return [(today - timedelta(days=offset)).isoformat() for offset in range(count - 1, -1, -1)]


async def _commissions_since(api: Api, since: datetime) -> list[dict[str, Any]]:
    """Commissions created since `since` (the list is newest first: stop at the first older one)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(20):
        body = await read(api, "/v1/commissions", limit=200, cursor=cursor)
        for item in body["items"]:
            if _created(item) < since:
                return found
            found.append(item)
        cursor = body.get("next_cursor")
        if not cursor:
            break
    return found


@router.get("/portal", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    api, viewer = await page_viewer(request, "affiliate")
    now = datetime.now(UTC)
    balances = await read_or(api, "/v1/balances", None)
    month = await _commissions_since(api, _month_start(now)) if viewer.can("commissions.read") else []
    links = await every(api, "/v1/referral-links")
    return render(request, "portal/home.html", {
        "balances": balances["balances"] if balances else None, "month_totals": _totals(month),
        "month_orders": len({c["order_id"] for c in month}), "month_name": now.strftime("%B %Y"),
        "clicks": sum(link["clicks"] for link in links), "active_links": sum(1 for link in links if link["active"]),
        "recent": month[:5],
    }, viewer=viewer)


# --- programs --------------------------------------------------------------------------------------


@router.get("/portal/programs", response_class=HTMLResponse)
async def programs(request: Request) -> HTMLResponse:
    api, viewer = await page_viewer(request, "affiliate")
    listed = await every(api, "/v1/programs")
    mine = {m["program_id"]: m for m in await every(api, "/v1/affiliates/me/memberships")}
    return render(request, "portal/programs.html", {
        "programs": listed, "mine": mine, "can_join": viewer.can("POST /v1/programs/{program_id}/memberships"),
    }, viewer=viewer)


@router.post("/portal/programs/{program_id}/join")
async def join(request: Request, program_id: str) -> RedirectResponse:
    await page_viewer(request, "affiliate")
    form = await request.form()
    return await send(request, "POST", f"/v1/programs/{seg(program_id)}/memberships",
                      {"message": str(form.get("message") or "")[:500]}, form=form, done="/portal/programs",
                      message="Application sent: approved at once, or when the seller approves it")


# --- the storefront's listings ---------------------------------------------------------------------


@router.get("/portal/listings", response_class=HTMLResponse)
async def listings(request: Request, storefront: str | None = None) -> HTMLResponse:
    api, viewer = await page_viewer(request, "affiliate")
    storefronts = await every(api, "/v1/storefronts")
    chosen = next((s for s in storefronts if s["slug"] == storefront), storefronts[0] if storefronts else None)
    listed: list[dict[str, Any]] = []
    catalog: list[dict[str, Any]] = []
    if chosen:
        listed = await every(api, f"/v1/storefronts/{seg(chosen['slug'])}/listings")
        catalog = await every(api, "/v1/catalog/products", pages=5)
    products = {p["id"]: p for p in catalog}
    joined = {m["program_id"] for m in await every(api, "/v1/affiliates/me/memberships") if m["status"] == "approved"}
    sellers = {p["seller_id"] for p in await every(api, "/v1/programs") if p["id"] in joined}
    on = {item["product_id"] for item in listed}
    return render(request, "portal/listings.html", {
        "storefronts": storefronts, "storefront": chosen,
        "listed": [{**item, "product": products.get(item["product_id"])} for item in listed],
        "addable": [p for p in catalog if p["id"] not in on and p["seller_id"] in sellers],
        "can_write": viewer.can("POST /v1/storefronts/{slug}/listings"),
    }, viewer=viewer)


@router.post("/portal/listings/{slug}/add")
async def add_listing(request: Request, slug: str) -> RedirectResponse:
    await page_viewer(request, "affiliate")
    form = await request.form()
    return await send(request, "POST", f"/v1/storefronts/{seg(slug)}/listings",
                      {"product_id": str(form.get("product_id") or "")}, form=form,
                      done=f"/portal/listings?storefront={seg(slug)}", message="Product added to your storefront")


@router.post("/portal/listings/{slug}/{product_id}/remove")
async def remove_listing(request: Request, slug: str, product_id: str) -> RedirectResponse:
    await page_viewer(request, "affiliate")
    return await send(request, "DELETE", f"/v1/storefronts/{seg(slug)}/listings/{seg(product_id)}", None,
                      done=f"/portal/listings?storefront={seg(slug)}", message="Product removed from your storefront")


# --- referral links and coupons --------------------------------------------------------------------


def _orders_per_day(commissions: list[dict[str, Any]], days: list[str]) -> list[tuple[str, int]]:
    """Orders that earned a commission, per UTC day (an order counts once, on its first day)."""
    first: dict[str, str] = {}
    for c in sorted(commissions, key=lambda c: c["created_at"]):
        first.setdefault(c["order_id"], _created(c).date().isoformat())
    counted = Counter(first.values())
    return [(day, counted.get(day, 0)) for day in days]


@router.get("/portal/links", response_class=HTMLResponse)
async def links(request: Request) -> HTMLResponse:
    api, viewer = await page_viewer(request, "affiliate")
    today = datetime.now(UTC).date()
    days = _days(today)
    found = await every(api, "/v1/referral-links")
    coupons = await every(api, "/v1/affiliates/me/coupons")
    since = datetime.combine(today - timedelta(days=CHART_DAYS - 1), datetime.min.time(), UTC)
    recent = await _commissions_since(api, since) if viewer.can("commissions.read") else []
    storefronts = await every(api, "/v1/storefronts")
    return render(request, "portal/links.html", {
        "links": found, "coupons": coupons, "storefronts": storefronts,
        "orders_chart": _orders_per_day(recent, days),
        "clicks_chart": sorted(((link["code"], link["clicks"]) for link in found), key=lambda r: -r[1])[:10],
        "can_create": viewer.can("POST /v1/referral-links"),
        "can_write": viewer.can("POST /v1/referral-links/{link_id}/deactivate"),
    }, viewer=viewer)


@router.post("/portal/links")
async def create_link(request: Request) -> RedirectResponse:
    await page_viewer(request, "affiliate")
    form = await request.form()
    fields = {key: str(form.get(key) or "").strip() for key in ("code", "target_url", "storefront_id", "product_id")}
    answer = await writing_api(request, form).post("/v1/referral-links", {k: v for k, v in fields.items() if v})
    if not answer.ok:
        raise api_error(answer)
    return redirect(f"/portal/links/{seg(answer.body['id'])}", f"Link created: {answer.body['url']}")


@router.get("/portal/links/{link_id}", response_class=HTMLResponse)
async def link(request: Request, link_id: str) -> HTMLResponse:
    api, viewer = await page_viewer(request, "affiliate")
    item = await read(api, f"/v1/referral-links/{seg(link_id)}")
    daily = {row["day"]: row for row in await read(api, f"/v1/referral-links/{seg(link_id)}/clicks/daily")}
    days = _days(datetime.now(UTC).date())
    return render(request, "portal/link.html", {
        "link": item, "clicks_chart": [(day, daily[day]["clicks"] if day in daily else 0) for day in days],
        "hits": sum(row["hits"] for row in daily.values()), "bot_hits": sum(row["bot_hits"] for row in daily.values()),
        "can_write": viewer.can("POST /v1/referral-links/{link_id}/deactivate"),
    }, viewer=viewer)


@router.post("/portal/links/{link_id}/deactivate")
async def deactivate_link(request: Request, link_id: str) -> RedirectResponse:
    await page_viewer(request, "affiliate")
    return await send(request, "POST", f"/v1/referral-links/{seg(link_id)}/deactivate", None,
                      done=f"/portal/links/{seg(link_id)}", message="Link deactivated: it no longer counts clicks")


# --- money -----------------------------------------------------------------------------------------


@router.get("/portal/commissions", response_class=HTMLResponse)
async def commissions(request: Request, cursor: str | None = None, status: str | None = None) -> HTMLResponse:
    api, viewer = await page_viewer(request, "affiliate")
    page = await read(api, "/v1/commissions", cursor=cursor, status=status, limit=50)
    return render(request, "portal/commissions.html", {"page": page, "status": status or ""}, viewer=viewer)


router.include_router(payouts_router("portal", "affiliate"))
router.include_router(team_router("portal", "affiliate"))
