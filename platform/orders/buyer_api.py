"""The buyer's routes without an account: the consent purposes a storefront renders, and the
order's secret link (orders.service.order_links): its status data and consent withdrawals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path

from kernel import consents
from kernel.clock import clock
from kernel.deps import DbSession, NoStore, PublicRateLimit, PublicWriteAudit, StrictQuery
from orders.schemas import ConsentPurposeOut, ConsentWithdrawalIn, OrderStatusOut
from orders.service import order_links

router = APIRouter(prefix="/v1", dependencies=[StrictQuery])

TokenPath = Path(min_length=16, max_length=128, description="the token of the order's link (from the buyer's email)")
NO_LINK: dict[int | str, dict[str, Any]] = {404: {"description": "no order has this link"}}


@router.get("/consent-purposes", response_model=list[ConsentPurposeOut], tags=["checkout"])
def consent_purposes() -> list[ConsentPurposeOut]:
    """Public: the purposes a buyer answers at checkout (`consents` of the checkout body), with
    what an unanswered one means. Every purpose is defined in one place (kernel.consents)."""
    return [ConsentPurposeOut(name=p.name, title=p.title, description=p.description, default=p.default)
            for p in consents.PURPOSES]


@router.get("/order-status/{token}", response_model=OrderStatusOut, tags=["checkout"],
            dependencies=[PublicRateLimit, NoStore], responses=NO_LINK)
def order_status(session: DbSession, token: str = TokenPath) -> OrderStatusOut:
    """Public, with the order's secret link: the order, each seller's part (status, lines,
    shipment), refunds, amounts, how to pay, the buyer's details and consents."""
    return order_links.status_view(session, order_links.order_by_token(session, token))


@router.post("/order-status/{token}/consent-withdrawals", response_model=OrderStatusOut, tags=["checkout"],
             dependencies=[PublicRateLimit, NoStore], responses=NO_LINK)
def withdraw_consents(
    body: ConsentWithdrawalIn, session: DbSession, audit: PublicWriteAudit, token: str = TokenPath,
) -> OrderStatusOut:
    """Public, with the order's secret link: withdraw the buyer's consent for some purposes (from
    now on; the link withdraws, it never gives consent). Withdrawing what is not given changes
    nothing."""
    order = order_links.withdraw_consents(session, token, body.purposes, now=clock.now())
    audit.object("order", order.id)
    return order_links.status_view(session, order)
