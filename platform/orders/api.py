"""Order routes: thin; each validates, calls one service function, renders one view."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Cookie, Depends, Header, Query, Response
from sqlalchemy.orm import Session

from affiliates.service import traffic
from kernel import mail
from kernel.auth import Principal, Role
from kernel.db import autocommit_engine, session_scope
from kernel.deps import (
    CurrentPrincipal,
    DbSession,
    NoStore,
    OperatorPrincipal,
    PublicRateLimit,
    SellerPrincipal,
    StrictQuery,
    get_runtime,
)
from kernel.errors import Forbidden, Unprocessable
from kernel.ledger import AFFILIATE, SELLER
from kernel.metrics import ORDERS_PLACED
from kernel.runtime import Runtime
from kernel.schemas import Page, decode_cursor, encode_cursor
from orders.errors import InvalidTransition
from orders.models import Order, SubOrder
from orders.schemas import (
    BalancesOut,
    CheckoutIn,
    CommissionOut,
    OrderBuyerOut,
    OrderOperatorOut,
    PlatformBalanceOut,
    RefundIn,
    RefundOut,
    RefundSettleIn,
    RejectIn,
    ShipIn,
    SubOrderSellerOut,
    TodayCurrencyOut,
    TodayOut,
)
from orders.service import buyer_policy, checkout, fulfilment, payments, queries, refunds, settlement, today, views
from orders.service.buyer_policy import Viewer

router = APIRouter(prefix="/v1", dependencies=[StrictQuery])

IdempotencyKeyHeader = Annotated[
    str,
    Header(alias="Idempotency-Key", min_length=8, max_length=255,
           description="a unique key per order attempt; retries with the same key and body return the same order"),
]
LimitQuery = Annotated[int, Query(ge=1, le=200)]


def _checkout(
    runtime: Runtime, body: CheckoutIn, idempotency_key: str, slug: str | None, response: Response
) -> Response:
    request = checkout.CheckoutRequest(
        items=[checkout.CartItem(i.variant_id, i.quantity) for i in body.items],
        buyer_email=str(body.buyer.email).lower(), buyer_name=body.buyer.name,
        shipping_address=body.shipping_address.model_dump(), idempotency_key=idempotency_key,
        storefront_slug=slug, coupon_code=body.coupon_code, attribution_token=body.attribution_token,
        canonical_body=body.canonical(), buyer_phone=body.buyer.phone,
        consents=body.consents,
        shipping_choices={choice.seller_id: choice.rate_id for choice in body.shipping or ()},
    )
    # The order commits first: on PostgreSQL the checkout reads, then writes everything in one
    # statement, on an autocommit connection, so that statement is its transaction (see
    # orders.service.checkout). Then, outside any transaction (a network call never holds a row lock),
    # the PaymentIntent is created, and its id stored in a second, one-statement unit of work.
    # Both steps are idempotent (orders.service.payments): a retry of the checkout finishes the job.
    bind = None if runtime.settings.is_sqlite else autocommit_engine(runtime.engine)
    try:
        with session_scope(runtime.sessions, bind=bind) as session:
            result = checkout.place_order(session, runtime.settings, request)
    except Exception:
        traffic.count_checkout(runtime.store, slug=slug, placed=False)  # a cart started all the same
        raise
    order = result.order
    if result.mail_id is not None:
        mail.send_later(runtime.settings, result.mail_id)  # committed with the order
    if not result.replayed:  # the funnel's counters (affiliates.service.traffic): no row written
        traffic.count_checkout(runtime.store, slug=slug, placed=True, storefront_id=order.storefront_id,
                               affiliate_id=None if order.self_referral else order.affiliate_id,
                               seller_ids=[sub.seller_id for sub in order.sub_orders])
    if payments.payment_needed(order) and (payment := payments.create_payment(runtime.rail, order)):
        with session_scope(runtime.sessions) as session:
            payments.record_payment(session, order.id, payment)
            order = session.get(Order, order.id)  # as stored (a twin's PaymentIntent is this one)
    rendered = views.order_for_buyer_json(order, (result.link.token, result.link.url) if result.link else None)
    # The JSON is rendered here (from plain dicts with orjson, in this worker thread: the same
    # bytes as OrderBuyerOut's serializer) and returned as a ready Response: FastAPI would
    # otherwise validate a model again and serialise it through another thread-pool hop.
    # `response_model` on the routes still documents the shape.
    # It carries the order link's token and the PaymentIntent's client secret: no cache keeps it.
    out = Response(rendered, status_code=201, media_type="application/json", headers={"Cache-Control": "no-store"})
    if result.replayed:
        out.headers["Idempotent-Replayed"] = "true"
    else:
        ORDERS_PLACED.inc()
    return out


@router.post(
    "/storefronts/{slug}/orders", status_code=201, response_model=OrderBuyerOut, tags=["checkout"],
    dependencies=[PublicRateLimit],
)
def checkout_in_storefront(
    slug: str, body: CheckoutIn, idempotency_key: IdempotencyKeyHeader, response: Response,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> Response:
    """A buyer checks out a cart (items from any sellers listed in this storefront)."""
    return _checkout(runtime, body, idempotency_key, slug, response)


@router.post(
    "/checkout", status_code=201, response_model=OrderBuyerOut, tags=["checkout"], dependencies=[PublicRateLimit]
)
def checkout_direct(
    body: CheckoutIn, idempotency_key: IdempotencyKeyHeader, response: Response,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    mk_ref: Annotated[str | None, Cookie(description="the referral token `GET /r/{code}` set in the browser")] = None,
) -> Response:
    """A checkout outside a storefront (a seller's or an affiliate's own site): attribution comes
    from the referral token (the body's `attribution_token`, else the `mk_ref` cookie a referral
    link set in the buyer's browser) or the coupon."""
    if body.attribution_token is None and mk_ref:
        body = body.model_copy(update={"attribution_token": mk_ref[:200]})
    return _checkout(runtime, body, idempotency_key, None, response)


def _page_of(rows: Sequence[object], limit: int, ids: list[uuid.UUID]) -> str | None:
    """We fetch limit + 1 rows: an extra row means there is a next page after the limit-th."""
    return encode_cursor(ids[limit - 1]) if len(rows) > limit else None


@router.get("/orders", response_model=Page[OrderOperatorOut], tags=["orders"], dependencies=[NoStore])
def list_orders(
    session: DbSession, principal: OperatorPrincipal, status: str | None = None, cursor: str | None = None,
    limit: LimitQuery = 50,
) -> Page[OrderOperatorOut]:
    """Operator: every order, newest first."""
    rows = queries.list_orders(session, status=status, after=decode_cursor(cursor), limit=limit)
    log = buyer_policy.AccessLog()  # the page's reads of buyer data: one insert
    items = [_operator_view(session, o, principal, log) for o in rows[:limit]]
    log.write(session)
    return Page(items=items, next_cursor=_page_of(rows, limit, [o.id for o in rows]))


@router.get("/orders/{order_id}", response_model=OrderOperatorOut, tags=["orders"], dependencies=[NoStore])
def get_order(order_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> OrderOperatorOut:
    """Operator: one order with the whole picture: attribution, each seller's share, the platform
    fee and every commission, and what was refunded."""
    return _operator_view(session, queries.get_order(session, order_id), principal)


@router.post("/orders/{order_id}/mark-paid", response_model=OrderOperatorOut, tags=["orders"],
             dependencies=[NoStore])
def mark_paid(
    order_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> OrderOperatorOut:
    """Operator, manual rail: the buyer's bank transfer arrived. Paying twice changes nothing."""
    order = queries.get_order(session, order_id)
    if order.payment_rail != "manual":
        raise InvalidTransition("this order is paid through Stripe; its webhook marks it paid")
    settlement.mark_paid(session, runtime.settings, order_id, payment_reference=None)
    return _operator_view(session, order, principal)


def _operator_view(session: Session, order: Order, principal: Principal,
                   log: buyer_policy.AccessLog | None = None) -> OrderOperatorOut:
    return views.order_for_operator(order, buyer_policy.view_and_log(session, order, Viewer.of(principal), log=log))


RefundKeyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=8, max_length=255,
           description="optional, recommended: a retry with the same key and body returns the same refund "
                       "(header Idempotent-Replayed) instead of refunding again"),
]


def _refund(
    session: Session, order_id: uuid.UUID, body: RefundIn, key: str | None, endpoint: str, response: Response, *,
    requested_by: str, seller_id: uuid.UUID | None = None,
) -> RefundOut:
    items = None if body.lines is None else [refunds.RefundItem(x.order_line_id, x.quantity) for x in body.lines]
    if key is None:
        refund = refunds.refund_order(session, order_id, items, reason=body.reason, requested_by=requested_by,
                                      seller_id=seller_id, include_shipping=body.include_shipping)
    else:
        # `include_shipping` counts in the fingerprint only when sent true: a key's fingerprint is
        # what it was before the field existed.
        request = refunds.IdempotentRequest.of(key, endpoint, body.model_dump(
            mode="json", exclude=None if body.include_shipping else {"include_shipping"}))
        refund, replayed = refunds.refund_order_once(session, order_id, items, request, reason=body.reason,
                                                     requested_by=requested_by, seller_id=seller_id,
                                                     include_shipping=body.include_shipping)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
    return views.refund_out(refund)


@router.post("/orders/{order_id}/refunds", status_code=201, response_model=RefundOut, tags=["refunds"])
def refund_order(
    order_id: uuid.UUID, body: RefundIn, session: DbSession, principal: OperatorPrincipal, response: Response,
    idempotency_key: RefundKeyHeader = None,
) -> RefundOut:
    """Operator: refund lines (by quantity) or everything left of the order."""
    return _refund(session, order_id, body, idempotency_key, f"order:{order_id}", response, requested_by="operator")


@router.get("/orders/{order_id}/refunds", response_model=list[RefundOut], tags=["refunds"])
def list_refunds(order_id: uuid.UUID, session: DbSession, principal: OperatorPrincipal) -> list[RefundOut]:
    """Operator: the order's refunds, oldest first, with the lines each gave back and its status."""
    queries.get_order(session, order_id)
    return [views.refund_out(r) for r in queries.list_refunds(session, order_id)]


@router.get("/refunds", response_model=list[RefundOut], tags=["refunds"])
def list_all_refunds(
    session: DbSession, principal: OperatorPrincipal,
    status: Annotated[Literal["recorded", "sent", "failed", "settled"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RefundOut]:
    """Operator: refunds across orders, newest first; `status=failed` lists buyers the rail could
    not pay back (with Stripe's reason), to settle another way."""
    return [views.refund_out(r) for r in queries.refunds_by_status(session, status, limit)]


@router.post("/refunds/{refund_id}/settle", response_model=RefundOut, tags=["refunds"])
def settle_refund(
    refund_id: uuid.UUID, body: RefundSettleIn, session: DbSession, principal: OperatorPrincipal
) -> RefundOut:
    """Operator: a failed refund was paid back outside the rail (a bank transfer, say); the money
    owed to the buyer (`refunds_owed`) leaves the books. 409 unless the refund failed."""
    return views.refund_out(refunds.settle_failed_refund(session, refund_id, body.note))


def _seller_view(session: Session, sub_id: uuid.UUID, principal: CurrentPrincipal) -> SubOrderSellerOut:
    return _sub_view(session, fulfilment.get_sub_order(session, principal, sub_id), principal)


def _sub_view(session: Session, sub: SubOrder, principal: Principal, order: Order | None = None,
              cache: buyer_policy.TermsCache | None = None, log: buyer_policy.AccessLog | None = None,
              ) -> SubOrderSellerOut:
    """A part of an order with what this viewer may see of its buyer (orders.service.buyer_policy);
    `order`: the sub-order's order when the caller has loaded it already (a page loads them at once)."""
    order = order or queries.get_order(session, sub.order_id)
    buyer = buyer_policy.view_and_log(session, order, Viewer.of(principal), seller_id=sub.seller_id,
                                      shipping=sub.status in views.PAID_STATES, cache=cache, log=log)
    return views.sub_order_for_seller(sub, buyer)


def _seller_or_operator(principal: CurrentPrincipal) -> CurrentPrincipal:
    if principal.role not in (Role.SELLER, Role.OPERATOR):
        raise Forbidden("sub-orders are for sellers and operators")
    return principal


SellerOrOperator = Annotated[CurrentPrincipal, Depends(_seller_or_operator)]


@router.get("/sub-orders", response_model=Page[SubOrderSellerOut], tags=["fulfilment"])
def list_sub_orders(
    session: DbSession, principal: SellerOrOperator, status: str | None = None, cursor: str | None = None,
    limit: LimitQuery = 50,
) -> Page[SubOrderSellerOut]:
    """A seller's sub-orders (only its own), newest first."""
    rows = queries.list_sub_orders(session, principal, status=status, after=decode_cursor(cursor), limit=limit)
    orders = queries.orders_by_id(session, (s.order_id for s in rows[:limit]))  # one statement, not one a row
    terms: buyer_policy.TermsCache = {}  # each affiliate's charter terms read once a page
    log = buyer_policy.AccessLog()  # and the page's reads of buyer data logged in one insert
    items = [_sub_view(session, s, principal, orders[s.order_id], terms, log) for s in rows[:limit]]
    log.write(session)
    return Page(items=items, next_cursor=_page_of(rows, limit, [s.id for s in rows]))


@router.get("/sub-orders/{sub_order_id}", response_model=SubOrderSellerOut, tags=["fulfilment"])
def get_sub_order(sub_order_id: uuid.UUID, session: DbSession, principal: SellerOrOperator) -> SubOrderSellerOut:
    """A seller's part of an order: its lines, its money and where to ship (another seller's is a 404)."""
    return _seller_view(session, sub_order_id, principal)


@router.post("/sub-orders/{sub_order_id}/accept", response_model=SubOrderSellerOut, tags=["fulfilment"])
def accept(
    sub_order_id: uuid.UUID, session: DbSession, principal: SellerPrincipal,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> SubOrderSellerOut:
    """Seller: accept your part of a paid order (the buyer is told); then ship it."""
    fulfilment.advance(session, runtime.settings, principal, sub_order_id, "accept")
    return _seller_view(session, sub_order_id, principal)


@router.post("/sub-orders/{sub_order_id}/ship", response_model=SubOrderSellerOut, tags=["fulfilment"])
def ship(
    sub_order_id: uuid.UUID, body: ShipIn, session: DbSession, principal: SellerPrincipal,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> SubOrderSellerOut:
    """Seller: your part is on its way, with the carrier's tracking number."""
    fulfilment.advance(session, runtime.settings, principal, sub_order_id, "ship",
                       tracking_number=body.tracking_number, carrier=body.carrier)
    return _seller_view(session, sub_order_id, principal)


@router.post("/sub-orders/{sub_order_id}/deliver", response_model=SubOrderSellerOut, tags=["fulfilment"])
def deliver(
    sub_order_id: uuid.UUID, session: DbSession, principal: SellerPrincipal,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> SubOrderSellerOut:
    """Delivered: the return window (seller share) and holding periods (commissions) start."""
    fulfilment.advance(session, runtime.settings, principal, sub_order_id, "deliver")
    return _seller_view(session, sub_order_id, principal)


@router.post("/sub-orders/{sub_order_id}/reject", response_model=SubOrderSellerOut, tags=["fulfilment"])
def reject(
    sub_order_id: uuid.UUID, body: RejectIn, session: DbSession, principal: SellerPrincipal
) -> SubOrderSellerOut:
    """The seller refuses its part: it is refunded to the buyer and the stock returns."""
    fulfilment.reject(session, principal, sub_order_id, body.reason)
    return _seller_view(session, sub_order_id, principal)


@router.post("/sub-orders/{sub_order_id}/refunds", status_code=201, response_model=RefundOut, tags=["refunds"])
def refund_sub_order(
    sub_order_id: uuid.UUID, body: RefundIn, session: DbSession, principal: SellerPrincipal, response: Response,
    idempotency_key: RefundKeyHeader = None,
) -> RefundOut:
    """A seller refunds lines of its own sub-order (or all that is left of it)."""
    sub = fulfilment.get_sub_order(session, principal, sub_order_id)
    if body.lines is not None and any(x.order_line_id not in {line.id for line in sub.lines} for x in body.lines):
        raise Unprocessable("refund lines must belong to this sub-order")
    return _refund(session, sub.order_id, body, idempotency_key, f"sub_order:{sub.id}", response,
                   requested_by="seller", seller_id=sub.seller_id)


@router.get("/commissions", response_model=Page[CommissionOut], tags=["commissions"])
def list_commissions(
    session: DbSession, principal: CurrentPrincipal, status: str | None = None, cursor: str | None = None,
    limit: LimitQuery = 50,
) -> Page[CommissionOut]:
    """An affiliate's commissions (a seller: commissions it funds; operator: all), newest first."""
    rows = queries.list_commissions(session, principal, status=status, after=decode_cursor(cursor), limit=limit)
    return Page(items=[views.commission_out(c) for c in rows[:limit]],
                next_cursor=_page_of(rows, limit, [c.id for c in rows]))


@router.get("/balances", response_model=BalancesOut, tags=["balances"])
def balances(
    session: DbSession, principal: CurrentPrincipal,
    owner_type: Annotated[str | None, Query(pattern="^(seller|affiliate)$")] = None,
    owner_id: uuid.UUID | None = None,
) -> BalancesOut:
    """Your balances per currency: pending, available, in transit (minor units). An operator
    passes owner_type and owner_id to read any payee's."""
    if principal.is_operator:
        if owner_type is None or owner_id is None:
            raise Unprocessable("an operator names the payee: owner_type and owner_id (or use /v1/platform/balances)")
        return queries.payee_balances(session, owner_type, owner_id)
    assert principal.subject_id is not None
    return queries.payee_balances(session, SELLER if principal.role is Role.SELLER else AFFILIATE,
                                  principal.subject_id)


@router.get("/platform/balances", response_model=list[PlatformBalanceOut], tags=["balances"])
def platform_balances(session: DbSession, principal: OperatorPrincipal) -> list[PlatformBalanceOut]:
    """Operator: fee revenue, money held, and what payees are owed, per currency."""
    return queries.platform_balances(session)


@router.get("/reports/today", response_model=TodayOut, tags=["reports"])
def today_report(session: DbSession, principal: OperatorPrincipal) -> TodayOut:
    """Operator: today (UTC) at a glance, per currency: orders placed and paid, sales, platform
    fees and commissions on today's paid orders, refunds, and what payees are owed now (due in
    the next payout, still held, in transit)."""
    since, figures = today.today(session)
    return TodayOut(date=since.date().isoformat(), since=since,
                    currencies=[TodayCurrencyOut.model_validate(row, from_attributes=True) for row in figures])
