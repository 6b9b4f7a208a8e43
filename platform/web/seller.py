"""The seller panel (/seller): see web/__init__.py for how pages work. Home (balance, sub-orders
to act on, recent payouts), products with their levels, prices and stock, sub-orders to accept,
ship and deliver, the affiliate program and its plan versions, payouts and the sales each covers,
and the team (web.seller_kit). Every action shown is one the viewer's role may take."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from web.api import Problem, seg
from web.pages import api_error, page_viewer, redirect, render, writing_api
from web.seller_kit import from_minor, payouts_router, read, read_or, refuse, send, team_router, to_minor

router = APIRouter(include_in_schema=False)
OPEN_SUB_ORDERS = ("paid", "accepted", "shipped")
LEVEL_ROWS = 3  # empty level rows offered on the new-product form


@router.get("/seller", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    api, viewer = await page_viewer(request, "seller")
    balances = await read_or(api, "/v1/balances", None)
    open_subs: list[dict[str, Any]] = []
    for status in OPEN_SUB_ORDERS:
        open_subs += (await read(api, "/v1/sub-orders", status=status, limit=20))["items"]
    payouts = await read_or(api, "/v1/payouts", None, limit=5)
    return render(request, "seller/home.html", {
        "balances": balances["balances"] if balances else None, "open_subs": open_subs,
        "payouts": payouts["items"] if payouts else None,
    }, viewer=viewer)


# --- products --------------------------------------------------------------------------------------


@router.get("/seller/products", response_class=HTMLResponse)
async def products(request: Request, cursor: str | None = None) -> HTMLResponse:
    api, viewer = await page_viewer(request, "seller")
    page = await read(api, "/v1/products", cursor=cursor, limit=50)
    return render(request, "seller/products.html", {"page": page, "can_create": viewer.can("POST /v1/products")},
                  viewer=viewer)


def _new_product_context(form: Any = None) -> dict[str, Any]:
    values = {key: str(form.get(key) or "") for key in ("name", "description", "category", "currency")} if form else {}
    columns = {key: [str(v) for v in form.getlist(f"level_{key}")] if form else []
               for key in ("name", "sku", "price", "stock")}
    levels = [{key: values[index] if index < len(values) else "" for key, values in columns.items()}
              for index in range(LEVEL_ROWS)]
    return {"values": values or {"currency": "USD"}, "levels": levels,
            "ships": bool(form.get("requires_shipping")) if form else True}


@router.get("/seller/products/new", response_class=HTMLResponse)
async def new_product(request: Request) -> HTMLResponse:
    _api, viewer = await page_viewer(request, "seller")
    return render(request, "seller/product_new.html", _new_product_context(), viewer=viewer)


@router.post("/seller/products/new", response_model=None)
async def create_product(request: Request) -> Response:
    _api, viewer = await page_viewer(request, "seller")
    form = await request.form()
    context = _new_product_context(form)
    currency = context["values"]["currency"].strip().upper()
    variants, wrong = [], []
    for number, level in enumerate(context["levels"], start=1):
        if not any(level.values()):
            continue
        price = to_minor(level["price"], currency)
        stock = level["stock"].strip() or "0"
        if price is None or not stock.isdigit():
            wrong.append(f"level {number}: the price must be an amount in {currency or 'the currency'} "
                         "and the stock a whole number")
            continue
        variants.append({"name": level["name"].strip(), "sku": level["sku"].strip(),
                         "price": {"amount": price, "currency": currency}, "stock": int(stock)})
    problem: Problem | None = None
    if wrong or not variants:
        problem = Problem(422, "Check the levels", "; ".join(wrong) or "give the product at least one level")
    else:
        body = {"name": context["values"]["name"].strip(), "description": context["values"]["description"],
                "currency": currency, "requires_shipping": context["ships"], "variants": variants}
        if context["values"]["category"].strip():
            body["category"] = context["values"]["category"].strip()
        answer = await writing_api(request, form).post("/v1/products", body)
        if answer.ok:
            return redirect(f"/seller/products/{seg(answer.body['id'])}", f"Product {body['name']} created (draft)")
        problem = answer.problem
    return render(request, "seller/product_new.html", {**context, "problem": problem}, viewer=viewer,
                  status_code=problem.status if problem else 422)


@router.get("/seller/products/{product_id}", response_class=HTMLResponse)
async def product(request: Request, product_id: str) -> HTMLResponse:
    api, viewer = await page_viewer(request, "seller")
    item = await read(api, f"/v1/products/{seg(product_id)}")
    for variant in item["variants"]:
        variant["price_input"] = from_minor(variant["price"]["amount"], variant["price"]["currency"])
    return render(request, "seller/product.html", {
        "product": item,
        "can_write": viewer.can("PATCH /v1/products/{product_id}/variants/{variant_id}"),
        "can_stock": viewer.can("POST /v1/products/{product_id}/variants/{variant_id}/stock"),
        "can_publish": viewer.can("POST /v1/products/{product_id}/publish"),
    }, viewer=viewer)


@router.post("/seller/products/{product_id}/levels")
async def add_level(request: Request, product_id: str) -> RedirectResponse:
    await page_viewer(request, "seller")
    form = await request.form()
    currency = str(form.get("currency") or "")
    price = to_minor(str(form.get("price") or ""), currency)
    stock = str(form.get("stock") or "").strip() or "0"
    if price is None or not stock.isdigit():
        raise refuse(422, "Check the level", f"the price must be an amount in {currency} and the stock a whole number")
    body = {"name": str(form.get("name") or "").strip(), "sku": str(form.get("sku") or "").strip(),
            "price": {"amount": price, "currency": currency}, "stock": int(stock)}
    return await send(request, "POST", f"/v1/products/{seg(product_id)}/variants", body, form=form,
                      done=f"/seller/products/{seg(product_id)}", message=f"Level {body['name']} added")


@router.post("/seller/products/{product_id}/{action}")
async def product_action(request: Request, product_id: str, action: str) -> RedirectResponse:
    await page_viewer(request, "seller")
    words = {"publish": "published", "unpublish": "unpublished", "archive": "archived"}
    if action not in words:
        raise refuse(404, "Not found", "no such action")
    return await send(request, "POST", f"/v1/products/{seg(product_id)}/{action}", None,
                      done=f"/seller/products/{seg(product_id)}", message=f"Product {words[action]}")


@router.post("/seller/products/{product_id}/levels/{variant_id}")
async def update_level(request: Request, product_id: str, variant_id: str) -> RedirectResponse:
    await page_viewer(request, "seller")
    form = await request.form()
    done = f"/seller/products/{seg(product_id)}"
    path = f"/v1/products/{seg(product_id)}/variants/{seg(variant_id)}"
    writer = writing_api(request, form)
    if "price" in form:
        currency = str(form.get("currency") or "")
        amount = to_minor(str(form.get("price") or ""), currency)
        if amount is None:
            raise refuse(422, "Not a price", f"give an amount in {currency}, like 19.90")
        answer = await writer.patch(path, {"price": {"amount": amount, "currency": currency}})
        if not answer.ok:
            raise api_error(answer)
    if "stock" in form:
        stock = str(form.get("stock") or "").strip()
        if not stock.isdigit():
            raise refuse(422, "Not a stock level", "give the units in stock as a whole number")
        answer = await writer.post(path + "/stock", {"set": int(stock)})
        if not answer.ok:
            raise api_error(answer)
    return redirect(done, "Level saved")


# --- sub-orders ------------------------------------------------------------------------------------


@router.get("/seller/sub-orders", response_class=HTMLResponse)
async def sub_orders(request: Request, status: str | None = None, cursor: str | None = None) -> HTMLResponse:
    api, viewer = await page_viewer(request, "seller")
    page = await read(api, "/v1/sub-orders", status=status, cursor=cursor, limit=50)
    return render(request, "seller/sub_orders.html", {"page": page, "status": status or ""}, viewer=viewer)


@router.get("/seller/sub-orders/{sub_order_id}", response_class=HTMLResponse)
async def sub_order(request: Request, sub_order_id: str) -> HTMLResponse:
    api, viewer = await page_viewer(request, "seller")
    sub = await read(api, f"/v1/sub-orders/{seg(sub_order_id)}")
    return render(request, "seller/sub_order.html", {
        "sub": sub, "can_fulfil": viewer.can("POST /v1/sub-orders/{sub_order_id}/ship")}, viewer=viewer)


@router.post("/seller/sub-orders/{sub_order_id}/{action}")
async def sub_order_action(request: Request, sub_order_id: str, action: str) -> RedirectResponse:
    await page_viewer(request, "seller")
    form = await request.form()
    body: dict[str, Any] | None
    if action == "ship":
        body = {"tracking_number": str(form.get("tracking_number") or "").strip(),
                "carrier": str(form.get("carrier") or "").strip() or None}
    elif action == "reject":
        body = {"reason": str(form.get("reason") or "").strip()}
    elif action in ("accept", "deliver"):
        body = None
    else:
        raise refuse(404, "Not found", "no such action")
    words = {"accept": "accepted", "ship": "shipped", "deliver": "delivered", "reject": "rejected"}
    return await send(request, "POST", f"/v1/sub-orders/{seg(sub_order_id)}/{action}", body, form=form,
                      done=f"/seller/sub-orders/{seg(sub_order_id)}", message=f"Sub-order {words[action]}")


# --- the affiliate program -------------------------------------------------------------------------


async def _own_program(api: Any, viewer: Any) -> dict[str, Any] | None:
    programs = await read(api, "/v1/programs", seller_id=viewer.organization_id, limit=1)
    return programs["items"][0] if programs["items"] else None


@router.get("/seller/program", response_class=HTMLResponse)
async def program(request: Request) -> HTMLResponse:
    api, viewer = await page_viewer(request, "seller")
    own = await _own_program(api, viewer)
    versions = (await read(api, f"/v1/programs/{seg(own['id'])}/plan-versions", limit=50))["items"] if own else []
    members = (await read_or(api, f"/v1/programs/{seg(own['id'])}/memberships", {"items": []}, limit=100))["items"] \
        if own else []
    coupons = (await read_or(api, f"/v1/programs/{seg(own['id'])}/coupons", {"items": []}, limit=200))["items"] \
        if own else []
    names = {m["affiliate_id"]: m["affiliate_name"] or m["affiliate_id"] for m in members}
    for version in versions:
        version["rules_json"] = json.dumps(version["rules"], indent=2)
    return render(request, "seller/program.html", {
        "program": own, "versions": versions, "members": members, "names": names,
        "coupons": [{**c, "affiliate_name": names.get(c["affiliate_id"], c["affiliate_id"])} for c in coupons],
        "can_manage": viewer.can("POST /v1/programs/{program_id}/plan-versions"),
        "can_create": viewer.can("POST /v1/programs"),
    }, viewer=viewer)


@router.post("/seller/program", response_model=None)
async def create_program(request: Request) -> Response:
    await page_viewer(request, "seller")
    return await send(request, "POST", "/v1/programs", {}, done="/seller/program", message="Program created")


@router.post("/seller/program/plan-versions", response_model=None)
async def add_plan_version(request: Request) -> Response:
    api, viewer = await page_viewer(request, "seller")
    form = await request.form()
    own = await _own_program(api, viewer)
    if own is None:
        raise refuse(404, "No program", "create your affiliate program first")
    raw = str(form.get("rules_json") or "").strip()
    rules: Any
    if raw:
        try:
            rules = json.loads(raw)
        except ValueError as exc:
            raise refuse(422, "The rules are not JSON", str(exc)) from exc
    else:
        bps = _bps(str(form.get("default_percent") or ""))
        if bps is None:
            raise refuse(422, "Not a percentage", "give the default commission as a percentage, like 10 or 7.5")
        rules = {"default": {"bps": bps}}
        bonus = _bps(str(form.get("first_order_percent") or ""))
        if bonus:
            rules["first_order_bonus"] = {"bps": bonus}
    body: dict[str, Any] = {"rules": rules, "note": str(form.get("note") or "")}
    return await send(request, "POST", f"/v1/programs/{seg(own['id'])}/plan-versions", body, form=form,
                      done="/seller/program", message="Plan version added")


@router.post("/seller/program/coupons", response_model=None)
async def create_coupon(request: Request) -> Response:
    api, viewer = await page_viewer(request, "seller")
    own = await _own_program(api, viewer)
    if own is None:
        raise refuse(404, "No program", "create your affiliate program first")
    form = await request.form()
    body = {"code": str(form.get("code") or "").strip(), "affiliate_id": str(form.get("affiliate_id") or "")}
    return await send(request, "POST", f"/v1/programs/{seg(own['id'])}/coupons", body, form=form,
                      done="/seller/program", message=f"Coupon {body['code']} created")


@router.post("/seller/program/coupons/{coupon_id}/deactivate", response_model=None)
async def deactivate_coupon(request: Request, coupon_id: str) -> Response:
    api, viewer = await page_viewer(request, "seller")
    own = await _own_program(api, viewer)
    if own is None:
        raise refuse(404, "No program", "create your affiliate program first")
    return await send(request, "POST", f"/v1/programs/{seg(own['id'])}/coupons/{seg(coupon_id)}/deactivate", None,
                      done="/seller/program", message="Coupon deactivated")


def _bps(text: str) -> int | None:
    """`"7.5"` percent as 750 basis points (at most two decimals), through the amount parser."""
    return to_minor(text, "USD") if text.strip() else None


router.include_router(payouts_router("seller", "seller"))
router.include_router(team_router("seller", "seller"))
