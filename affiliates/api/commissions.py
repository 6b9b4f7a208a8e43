"""The commission preview: every party's share of a cart as checkout would compute it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from affiliates.api.common import RuntimeDep
from affiliates.schemas import (
    AttributionOut,
    CommissionShareOut,
    PartyTotalOut,
    PreviewIn,
    PreviewLineOut,
    PreviewOut,
)
from affiliates.service import preview
from affiliates.service.commission import SessionFirstOrderCheck, Settlement
from kernel.deps import CurrentPrincipal, DbSession, StrictQuery
from kernel.schemas import money

router = APIRouter(dependencies=[StrictQuery])


async def get_first_order_check(request: Request) -> SessionFirstOrderCheck:
    """The orders package's "which of these sellers is this buyer new to" query: this package
    cannot import orders, so the assembly puts it on the app (`app.state.first_order_check`)."""
    check: SessionFirstOrderCheck | None = getattr(request.app.state, "first_order_check", None)
    if check is None:
        raise RuntimeError("no first-order check on this app: build it with marketplace.app.create_app")
    return check


FirstOrderCheckDep = Annotated[SessionFirstOrderCheck, Depends(get_first_order_check)]


@router.post("/v1/commissions/preview", response_model=PreviewOut, tags=["commissions"],
             responses={404: {"description": "A variant, storefront or attribution token of the cart is not found"}})
def preview_commissions(body: PreviewIn, session: DbSession, principal: CurrentPrincipal,
                        runtime: RuntimeDep, first_order_check: FirstOrderCheckDep) -> PreviewOut:
    """Every party's share of a cart exactly as checkout would compute it now (same engine, same
    catalog prices). A seller may preview carts of its own products; an affiliate only
    attribution to itself. Only an operator's preview reads the buyer's order history (the
    first-order bonus); others price the cart as the buyer's first order with each seller."""
    lines, settlement = preview.preview(session, runtime.store, runtime.settings, principal, body, first_order_check)
    return _preview_out(lines, settlement)


def _preview_out(lines: list[Any], settlement: Settlement) -> PreviewOut:
    currency = lines[0].currency
    out_lines = []
    for line, settled in zip(lines, settlement.lines, strict=True):
        out_lines.append(PreviewLineOut(
            variant_id=line.variant_id, product_id=line.product_id, seller_id=line.seller_id,
            quantity=line.quantity, unit_amount=money(line.unit_amount, currency), gross=money(settled.gross, currency),
            discount=money(settled.discount, currency), amount=money(settled.amount, currency),
            platform_fee=money(settled.platform_fee, currency),
            commissions=[CommissionShareOut(
                affiliate_id=c.affiliate_id, role=c.role, amount=money(c.amount, currency),
                program_id=c.program_id, plan_version_id=c.plan_version_id, funded_by=c.funded_by,
                holding_period_days=c.holding_period_days,
            ) for c in settled.commissions],
            seller_net=money(settled.seller_net, currency), plan_version_id=settled.plan_version_id,
            no_commission_reason=settled.no_commission_reason,
        ))
    a = settlement.attribution
    return PreviewOut(
        currency=currency,
        attribution=AttributionOut(affiliate_id=a.affiliate_id, source=a.source,
                                   storefront_id=a.storefront_id, click_id=a.click_id, coupon_id=a.coupon_id,
                                   self_referral=a.self_referral),
        lines=out_lines,
        total=money(sum(s.amount for s in settlement.lines), currency),
        platform_fee=money(sum(s.platform_fee for s in settlement.lines), currency),
        commissions=money(sum(s.commission_total for s in settlement.lines), currency),
        seller_net=money(sum(s.seller_net for s in settlement.lines), currency),
        parties=[PartyTotalOut(party_type=kind, party_id=pid, amount=money(amount, currency))
                 for kind, pid, amount in preview.party_totals(lines, settlement)],
        first_order_sellers=sorted(settlement.first_order_sellers),
    )
