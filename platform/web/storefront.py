"""The storefront buyers order from (/s/{slug}): see web/__init__.py for how pages work.

Pages: the listing (search, seller filter, API cursors), a product with its levels, the cart, the
checkout, and the order page behind the order's secret link. Every figure comes from the API:

- The cart is a cookie per storefront (`mk_cart`, path `/s/{slug}`) holding only product ids,
  variant ids and quantities (`product:variant:quantity|...`: no character a cookie must quote);
  every view prices it again from the API's product reads, and the checkout sends only variant
  ids and quantities (the platform prices from the catalog).
- Each rendering of the checkout form carries a fresh Idempotency-Key in a hidden field: a double
  click or a re-sent form is one attempt, so one order (the API replays the first answer).
- Anonymous forms carry the double-submit token (`web.pages.form_token`).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from web.api import Answer, Api, Problem, seg
from web.pages import (
    FORM_FIELD,
    api_error,
    check_form_token,
    form_token,
    problem_fields,
    redirect,
    render,
    secure_cookies,
    with_form_cookie,
)

router = APIRouter(include_in_schema=False)

CART_COOKIE = "mk_cart"
MAX_LINES = 50  # CheckoutIn's limit
MAX_QUANTITY = 1000
LOW_STOCK = 5  # at or under this many left a level shows "low stock"
PAGE_SIZE = 12
HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "region", "country")


# --- the cart cookie ------------------------------------------------------------------------------


@dataclass(slots=True)
class Cart:
    """(product id, variant id) -> quantity, in the order they were added."""

    lines: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def read(cls, request: Request) -> Cart:
        cart = cls()
        for part in (request.cookies.get(CART_COOKIE) or "").split("|"):
            bits = part.split(":")
            if len(bits) != 3 or not bits[2].isdigit():
                continue
            try:
                key = (str(uuid.UUID(bits[0])), str(uuid.UUID(bits[1])))
            except ValueError:
                continue
            quantity = int(bits[2])
            if 1 <= quantity <= MAX_QUANTITY and len(cart.lines) < MAX_LINES:
                cart.lines[key] = quantity
        return cart

    def cookie_value(self) -> str:
        return "|".join(f"{p}:{v}:{q}" for (p, v), q in self.lines.items())

    @property
    def count(self) -> int:
        return sum(self.lines.values())

    def save(self, response: Response, slug: str, request: Request) -> Response:
        path = f"/s/{seg(slug)}"
        if self.lines:
            response.set_cookie(CART_COOKIE, self.cookie_value(), max_age=30 * 86400, httponly=True,
                                samesite="lax", secure=secure_cookies(request), path=path)
        else:
            response.delete_cookie(CART_COOKIE, path=path)
        return response


def _quantity(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 5 else None


# --- what every page shows ------------------------------------------------------------------------


def stock_state(variant: Mapping[str, Any]) -> str:
    """in_stock | low_stock | out_of_stock (the words are shown; the badge colour only repeats them)."""
    stock = int(variant.get("stock") or 0)
    if not variant.get("in_stock") or stock <= 0:
        return "out_of_stock"
    return "low_stock" if stock <= LOW_STOCK else "in_stock"


def product_state(product: Mapping[str, Any]) -> str:
    states = {stock_state(v) for v in product.get("variants") or []}
    return "in_stock" if "in_stock" in states else "low_stock" if "low_stock" in states else "out_of_stock"


def branding(storefront: Mapping[str, Any]) -> dict[str, Any]:
    """The storefront's colour (checked by the API; checked again here, as it goes into a <style>)
    and its logo (an https URL only)."""
    colour = str(storefront.get("brand_color") or "")
    logo = str(storefront.get("logo_url") or "")
    return {"brand_color": colour if HEX_COLOR.fullmatch(colour) else None,
            "logo_url": logo if logo.startswith("https://") else None}


async def _storefront(api: Api, slug: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/storefronts/{seg(slug)}")
    if not answer.ok:
        raise api_error(answer)
    body: dict[str, Any] = answer.body
    return body


def _page(request: Request, template: str, storefront: Mapping[str, Any], context: Mapping[str, Any], *,
          status_code: int = 200) -> HTMLResponse:
    return render(request, template, {"storefront": storefront, "brand": branding(storefront),
                                      "cart_count": Cart.read(request).count, "stock_state": stock_state,
                                      "product_state": product_state, **context}, status_code=status_code)


# --- listing and product --------------------------------------------------------------------------


@router.get("/s/{slug}", response_class=HTMLResponse)
async def listing(request: Request, slug: str, q: str | None = None, seller: str | None = None,
                  cursor: str | None = None) -> HTMLResponse:
    api = Api(request)
    storefront = await _storefront(api, slug)
    query = (q or "").strip()[:200]
    seller_ids = {str(s["id"]) for s in storefront.get("sellers") or []}
    seller_id = seller if seller in seller_ids else None
    products = await api.get(f"/v1/storefronts/{seg(slug)}/products", q=query or None, seller_id=seller_id,
                             cursor=(cursor or "")[:500] or None, limit=PAGE_SIZE)
    if products.status == 422 and cursor:  # a stale or edited cursor: the first page
        products = await api.get(f"/v1/storefronts/{seg(slug)}/products", q=query or None, seller_id=seller_id,
                                 limit=PAGE_SIZE)
    if not products.ok:
        raise api_error(products)
    kept = {k: v for k, v in (("q", query), ("seller", seller_id)) if v}
    return _page(request, "storefront/listing.html", storefront, {
        "products": products.body["items"], "next_cursor": products.body.get("next_cursor"), "q": query,
        "seller_id": seller_id, "paged": bool(cursor), "kept": ("&" + urlencode(kept)) if kept else "",
        "first_page": f"/s/{seg(slug)}" + (f"?{urlencode(kept)}" if kept else ""),
    })


async def _product(api: Api, slug: str, product_id: str) -> Answer:
    try:
        uuid.UUID(product_id)
    except ValueError:
        return Answer(404, {"title": "No such product", "detail": f"no product {product_id[:40]!r}"}, httpx.Headers())
    return await api.get(f"/v1/storefronts/{seg(slug)}/products/{seg(product_id)}")


@router.get("/s/{slug}/products/{product_id}", response_class=HTMLResponse)
async def product_page(request: Request, slug: str, product_id: str) -> HTMLResponse:
    api = Api(request)
    storefront = await _storefront(api, slug)
    product = await _product(api, slug, product_id)
    if not product.ok:
        raise api_error(product)
    token = form_token(request)
    page = _page(request, "storefront/product.html", storefront, {"product": product.body, "form_token": token})
    with_form_cookie(page, token, request)
    return page


# --- the cart -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PricedLine:
    product_id: str
    variant_id: str
    product_name: str
    variant_name: str
    sku: str
    seller_id: str
    seller_name: str
    unit_amount: int
    quantity: int
    stock_state: str
    stock: int

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


@dataclass(slots=True)
class PricedCart:
    currency: str
    lines: list[PricedLine]
    gone: int  # lines whose product or level is no longer for sale (dropped)

    def by_seller(self) -> list[tuple[str, list[PricedLine], int]]:
        groups: dict[str, list[PricedLine]] = {}
        for line in self.lines:
            groups.setdefault(line.seller_name, []).append(line)
        return [(name, lines, sum(line.amount for line in lines)) for name, lines in groups.items()]

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


async def price_cart(api: Api, slug: str, cart: Cart, currency: str) -> PricedCart:
    """The cart priced from the API's product reads (cached there), one read per product."""
    product_ids = list(dict.fromkeys(p for p, _ in cart.lines))
    answers = await asyncio.gather(*(_product(api, slug, p) for p in product_ids))
    products = {p: a.body for p, a in zip(product_ids, answers, strict=True) if a.ok}
    lines: list[PricedLine] = []
    for (product_id, variant_id), quantity in cart.lines.items():
        product = products.get(product_id)
        variant = next((v for v in (product or {}).get("variants") or [] if str(v["id"]) == variant_id), None)
        if product is None or variant is None:
            continue
        lines.append(PricedLine(
            product_id=product_id, variant_id=variant_id, product_name=str(product["name"]),
            variant_name=str(variant["name"]), sku=str(variant["sku"]), seller_id=str(product["seller_id"]),
            seller_name=str(product["seller_name"]), unit_amount=int(variant["price"]["amount"]),
            quantity=quantity, stock_state=stock_state(variant), stock=int(variant.get("stock") or 0),
        ))
    return PricedCart(currency=currency, lines=lines, gone=len(cart.lines) - len(lines))


@router.get("/s/{slug}/cart", response_class=HTMLResponse)
async def cart_page(request: Request, slug: str) -> Response:
    api = Api(request)
    storefront = await _storefront(api, slug)
    cart = Cart.read(request)
    priced = await price_cart(api, slug, cart, str(storefront["currency"]))
    token = form_token(request)
    page = _page(request, "storefront/cart.html", storefront, {"cart": priced, "form_token": token})
    if priced.gone:  # forget what is no longer for sale
        Cart({(line.product_id, line.variant_id): line.quantity for line in priced.lines}).save(page, slug, request)
    return with_form_cookie(page, token, request)


@router.post("/s/{slug}/cart")
async def change_cart(request: Request, slug: str) -> Response:
    """One form for every cart change: `add` (product_id, variant_id, quantity), `update`
    (quantity.<variant_id> per line) or `remove` (the variant id)."""
    form = await request.form()
    back = f"/s/{seg(slug)}/cart"
    if not check_form_token(request, form):
        return redirect(back, "The form expired: please try again.")
    cart = Cart.read(request)
    message = "Cart updated."
    if form.get("remove"):
        cart.lines = {k: q for k, q in cart.lines.items() if k[1] != str(form.get("remove"))}
        message = "Removed from the cart."
    elif form.get("action") == "add":
        try:
            key = (str(uuid.UUID(str(form.get("product_id")))), str(uuid.UUID(str(form.get("variant_id")))))
        except ValueError:
            return redirect(f"/s/{seg(slug)}", "Choose a level to add.")
        added = _quantity(form.get("quantity")) or 1
        if key not in cart.lines and len(cart.lines) >= MAX_LINES:
            return redirect(back, f"A cart holds at most {MAX_LINES} lines.")
        cart.lines[key] = min(cart.lines.get(key, 0) + added, MAX_QUANTITY)
        message = "Added to the cart."
    else:
        for key in list(cart.lines):
            quantity = _quantity(form.get(f"quantity.{key[1]}"))
            if quantity == 0:
                del cart.lines[key]
            elif quantity is not None:
                cart.lines[key] = min(quantity, MAX_QUANTITY)
    return cart.save(redirect(back, message), slug, request)


# --- checkout -------------------------------------------------------------------------------------


def _checkout_body(form: Mapping[str, Any], cart: Cart, purposes: list[dict[str, Any]]) -> dict[str, Any]:
    def text(name: str) -> str | None:
        return str(form.get(name) or "").strip() or None

    buyer: dict[str, Any] = {"email": text("email") or "", "name": text("name") or ""}
    if text("phone"):
        buyer["phone"] = text("phone")
    address: dict[str, Any] = {name: text(name) for name in ADDRESS_FIELDS}
    address["country"] = (address["country"] or "").upper()
    for name in ("line1", "city", "postal_code"):
        address[name] = address[name] or ""
    body: dict[str, Any] = {
        "items": [{"variant_id": variant_id, "quantity": quantity} for (_, variant_id), quantity in cart.lines.items()],
        "buyer": buyer, "shipping_address": {k: v for k, v in address.items() if v is not None},
    }
    if text("coupon_code"):
        body["coupon_code"] = text("coupon_code")
    if purposes:
        body["consents"] = {str(p["name"]): form.get(f"consent.{p['name']}") == "yes" for p in purposes}
    return body


async def _purposes(api: Api) -> list[dict[str, Any]]:
    """The consents the platform asks for (`GET /v1/consent-purposes`; none where the API has none)."""
    answer = await api.get("/v1/consent-purposes")
    return list(answer.body) if answer.ok and isinstance(answer.body, list) else []


async def _shipping_options(api: Api, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The sellers of the cart that ship with rates to the address (`POST /v1/shipping/quote`),
    each with its options, cheapest first; none when the address has no valid country yet (the
    order's own validation then names the field)."""
    address = body["shipping_address"]
    if not re.fullmatch(r"[A-Z]{2}", str(address.get("country") or "")):
        return []
    quote: dict[str, Any] = {"items": body["items"], "country": address["country"]}
    if address.get("region"):
        quote["region"] = address["region"]
    answer = await api.post("/v1/shipping/quote", quote)
    if not answer.ok or not isinstance(answer.body, dict):
        return []
    return [seller for seller in answer.body.get("sellers") or [] if seller.get("required")]


def _chosen_rates(form: Mapping[str, Any], shipping: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The buyer's choice per seller that ships with rates, where it is one of that seller's options."""
    chosen = []
    for seller in shipping:
        rate_id = str(form.get(f"shipping.{seller['seller_id']}") or "")
        if any(str(option["rate_id"]) == rate_id for option in seller["options"]):
            chosen.append({"seller_id": str(seller["seller_id"]), "rate_id": rate_id})
    return chosen


async def _checkout_page(request: Request, api: Api, slug: str, storefront: Mapping[str, Any], *,
                         values: Mapping[str, Any] | None = None, problem: Problem | None = None,
                         status_code: int = 200, shipping: list[dict[str, Any]] | None = None,
                         idempotency_key: str | None = None) -> Response:
    cart = Cart.read(request)
    priced = await price_cart(api, slug, cart, str(storefront["currency"]))
    token = form_token(request)
    errors = problem_fields(problem)
    shown = {f"buyer.{n}" for n in ("email", "name", "phone")} | {f"shipping_address.{n}" for n in ADDRESS_FIELDS}
    other_errors = {k: v for k, v in errors.items() if k not in shown | {"coupon_code", "consents"}}
    page = _page(request, "storefront/checkout.html", storefront, {
        "cart": priced, "form_token": token, "idempotency_key": idempotency_key or uuid.uuid4().hex,
        "purposes": await _purposes(api), "shipping": shipping or [],
        "seller_names": {line.seller_id: line.seller_name for line in priced.lines},
        "values": values or {}, "problem": problem, "errors": errors, "other_errors": other_errors,
        "form_field": FORM_FIELD,
    }, status_code=status_code)
    return with_form_cookie(page, token, request)


@router.get("/s/{slug}/checkout", response_class=HTMLResponse)
async def checkout_page(request: Request, slug: str) -> Response:
    api = Api(request)
    storefront = await _storefront(api, slug)
    if not Cart.read(request).lines:
        return redirect(f"/s/{seg(slug)}/cart", "Your cart is empty.")
    return await _checkout_page(request, api, slug, storefront)


@router.post("/s/{slug}/checkout", response_class=HTMLResponse)
async def place_order(request: Request, slug: str) -> Response:
    form = await request.form()
    api = Api(request)
    storefront = await _storefront(api, slug)
    cart = Cart.read(request)
    if not check_form_token(request, form):
        # Nothing the failed form sent is shown again: a form posted from another site must not
        # pre-fill this page (its address, its consents) for the buyer to submit as their own.
        return await _checkout_page(request, api, slug, storefront, status_code=400, problem=Problem(
            400, "The form expired", "nothing was ordered: enter the details and place the order again"))
    if not cart.lines:
        return redirect(f"/s/{seg(slug)}/cart", "Your cart is empty.")
    values = {k: str(v) for k, v in form.items() if k not in (FORM_FIELD, "idempotency_key")}
    key = str(form.get("idempotency_key") or "")
    if not re.fullmatch(r"[0-9a-f]{32}", key):
        key = uuid.uuid4().hex
    body = _checkout_body(form, cart, await _purposes(api))
    shipping = await _shipping_options(api, body)
    chosen = _chosen_rates(form, shipping)
    if len(chosen) < len(shipping):
        # A seller ships with rates to this address: the buyer sees its options (cheapest first)
        # and chooses before anything is ordered. The same form key: still one attempt.
        return await _checkout_page(request, api, slug, storefront, values=values, shipping=shipping,
                                    idempotency_key=key)
    if chosen:
        body["shipping"] = chosen
    answer = await api.post(f"/v1/storefronts/{seg(slug)}/orders", body, headers={"Idempotency-Key": key})
    if not answer.ok:
        return await _checkout_page(request, api, slug, storefront, values=values, problem=answer.problem,
                                    status_code=answer.status if 400 <= answer.status < 500 else 502)
    order: dict[str, Any] = answer.body
    token = order.get("status_token")
    if token:
        response: Response = redirect(f"/s/{seg(slug)}/orders/{seg(token)}", "Thank you: your order is placed.")
    else:
        # A replay of the same attempt (a double click: the API answers the first order again,
        # without its secret link, which went to the buyer's email), or an API without links.
        response = _page(request, "storefront/placed.html", storefront, {"order": order})
    return Cart().save(response, slug, request)


# --- the order behind its secret link -------------------------------------------------------------


@router.get("/s/{slug}/orders/{token}", response_class=HTMLResponse)
async def order_page(request: Request, slug: str, token: str) -> Response:
    api = Api(request)
    storefront = await _storefront(api, slug)
    order = await api.get(f"/v1/order-status/{seg(token)}")
    if not order.ok:
        raise api_error(order)
    form = form_token(request)
    page = _page(request, "storefront/order.html", storefront, {
        "order": order.body, "purposes": await _purposes(api), "form_token": form, "token": token})
    page.headers["Cache-Control"] = "no-store"
    page.headers["Referrer-Policy"] = "no-referrer"  # the link is the key to the order
    return with_form_cookie(page, form, request)


@router.post("/s/{slug}/orders/{token}/consents")
async def withdraw_consents(request: Request, slug: str, token: str) -> Response:
    """The buyer withdraws consents through the order's link (the link withdraws, never grants)."""
    form = await request.form()
    back = f"/s/{seg(slug)}/orders/{seg(token)}"
    if not check_form_token(request, form):
        return redirect(back, "The form expired: please try again.")
    purposes = [str(value) for value in form.getlist("withdraw")]
    if not purposes:
        return redirect(back, "Choose what to withdraw.")
    answer = await Api(request).post(f"/v1/order-status/{seg(token)}/consent-withdrawals", {"purposes": purposes})
    if not answer.ok:
        raise api_error(answer)
    return redirect(back, "Your consent is withdrawn.")

