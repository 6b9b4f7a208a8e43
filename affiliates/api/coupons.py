"""A seller program's coupon codes (an affiliate's own list is `GET /v1/affiliates/me/coupons`)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from affiliates.api.common import Cursor, Limit, SellerOrOperator
from affiliates.api.views import coupon_out
from affiliates.schemas import CouponCreate, CouponOut
from affiliates.service import coupons
from kernel.deps import DbSession, StrictQuery
from kernel.schemas import Page

router = APIRouter(dependencies=[StrictQuery])


@router.post("/v1/programs/{program_id}/coupons", status_code=201, response_model=CouponOut, tags=["coupons"])
def create_coupon(program_id: uuid.UUID, body: CouponCreate, session: DbSession,
                  principal: SellerOrOperator) -> CouponOut:
    """Seller: a coupon code tied to an approved member. Buyers get the program's coupon discount
    on your products; the order is attributed to the member (after storefront and click)."""
    coupon = coupons.create(session, principal, program_id, body.code, body.affiliate_id)
    return coupon_out(coupon, coupons.discount_bps(session, [coupon.program_id]).get(coupon.program_id, 0))


@router.get("/v1/programs/{program_id}/coupons", response_model=Page[CouponOut], tags=["coupons"])
def list_coupons(program_id: uuid.UUID, session: DbSession, principal: SellerOrOperator, cursor: Cursor = None,
                 limit: Limit = 50) -> Page[CouponOut]:
    """Seller: your program's coupon codes and the member each one credits, oldest first."""
    rows, next_cursor = coupons.list_for(session, principal, program_id, cursor=cursor, limit=limit)
    bps = coupons.discount_bps(session, [program_id]).get(program_id, 0)
    return Page(items=[coupon_out(c, bps) for c in rows], next_cursor=next_cursor)


@router.post("/v1/programs/{program_id}/coupons/{coupon_id}/deactivate", response_model=CouponOut,
             tags=["coupons"])
def deactivate_coupon(program_id: uuid.UUID, coupon_id: uuid.UUID, session: DbSession,
                      principal: SellerOrOperator) -> CouponOut:
    """Seller: the code stops discounting and attributing new orders; orders placed with it keep theirs."""
    coupon = coupons.deactivate(session, principal, program_id, coupon_id)
    return coupon_out(coupon, coupons.discount_bps(session, [program_id]).get(program_id, 0))
