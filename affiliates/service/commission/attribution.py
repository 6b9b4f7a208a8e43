"""Attribution: who one order is attributed to. One rule, used by checkout and the preview.

1. an order placed through a storefront -> that storefront's affiliate (source "storefront");
2. else the click the attribution token names, if it is valid: it exists, is not in the future,
   its affiliate is approved, and `at <= clicked_at + window` (inclusive) where window is the
   longest attribution window among the programs, of the cart's sellers when `seller_ids` is
   given, that the affiliate is an approved member of (source "click"). It is the LAST click
   because every click overwrites the buyer's token cookie;
3. else the owner of the coupon code (source "coupon");
4. else nobody (source "none").
If the attributed affiliate's email equals the buyer's email (case-insensitive) it is a
self-referral: attribution is kept and flagged (`self_referral=True`) but earns nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy import Row, bindparam, func, select
from sqlalchemy.orm import Session

from affiliates.errors import UnknownStorefront
from affiliates.models import (
    Affiliate,
    AffiliateStatus,
    Click,
    MembershipStatus,
    Program,
    ProgramMembership,
    Storefront,
)
from affiliates.service.commission.loaders import load_coupon
from affiliates.service.commission.terms import (
    SOURCE_CLICK,
    SOURCE_COUPON,
    SOURCE_NONE,
    SOURCE_STOREFRONT,
    Attribution,
    normalize_email,
)
from kernel.clock import as_utc
from kernel.pgsql import Built, in_list, precompile, run_built


def resolve_attribution(
    session: Session,
    *,
    storefront_id: UUID | None,
    attribution_token: str | None,
    coupon_code: str | None,
    buyer_email: str,
    at: datetime,
    seller_ids: Collection[UUID] | None = None,
    storefront_affiliate_id: UUID | None = None,
) -> Attribution:
    """Who an order is attributed to (the rule is in the module docstring). At most three
    SELECTs (storefront, click, coupon), each stopping the search when it attributes.

    `seller_ids` (the cart's sellers) narrows the click window to the programs in the cart; pass
    it when known. Raises UnknownStorefront / UnknownCoupon for ids and codes that do not exist.

    `storefront_affiliate_id`: the storefront's affiliate, when the caller already read it (the
    checkout does, from the storefront cache). Then no SELECT is made here; the attribution comes
    back with `self_referral_pending=True` and `settle_cart` decides self-referral from the
    affiliate row it reads anyway (one statement less per storefront order).

    A coupon attribution carries the coupon it read (`Attribution.coupon`): `settle_cart` takes
    the coupon's discount from it instead of reading the code again.
    """
    buyer = normalize_email(buyer_email)

    if storefront_id is not None and storefront_affiliate_id is not None:
        return Attribution(
            affiliate_id=storefront_affiliate_id, source=SOURCE_STOREFRONT, storefront_id=storefront_id,
            self_referral_pending=True,
        )

    if storefront_id is not None:
        front = session.execute(
            select(Storefront.affiliate_id, Affiliate.email)
            .join(Affiliate, Affiliate.id == Storefront.affiliate_id)
            .where(Storefront.id == storefront_id)
        ).first()
        if front is None:
            raise UnknownStorefront(f"no storefront {storefront_id}")
        return Attribution(
            affiliate_id=front.affiliate_id, source=SOURCE_STOREFRONT, storefront_id=storefront_id,
            self_referral=front.email == buyer,
        )

    if attribution_token:
        click = _valid_click(session, attribution_token, at, seller_ids)
        if click is not None:
            return Attribution(
                affiliate_id=click.affiliate_id, source=SOURCE_CLICK, click_id=click.id,
                clicked_at=as_utc(click.created_at), self_referral=click.email == buyer,
            )

    if coupon_code:
        coupon = load_coupon(session, coupon_code)
        return Attribution(
            affiliate_id=coupon.affiliate_id, source=SOURCE_COUPON, coupon_id=coupon.coupon_id,
            self_referral=coupon.affiliate_email == buyer, coupon=coupon,
        )

    return Attribution(affiliate_id=None, source=SOURCE_NONE)


@lru_cache(maxsize=4)
def _click_stmt(narrowed: bool, postgres: bool) -> Built:
    window_conditions = [
        ProgramMembership.affiliate_id == Click.affiliate_id,
        ProgramMembership.status == MembershipStatus.APPROVED.value,
    ]
    if narrowed:
        window_conditions.append(in_list(Program.seller_id, "seller_ids", postgres))
    longest_window = (
        select(func.max(Program.attribution_window_days))
        .join(ProgramMembership, ProgramMembership.program_id == Program.id)
        .where(*window_conditions)
        .correlate(Click)
        .scalar_subquery()
    )
    stmt = (
        select(Click.id, Click.affiliate_id, Click.created_at, Affiliate.email, Affiliate.status,
               longest_window.label("window_days"))
        .join(Affiliate, Affiliate.id == Click.affiliate_id)
        .where(Click.token == bindparam("token"))
    )
    return precompile(stmt) if postgres else stmt


def _valid_click(
    session: Session, token: str, at: datetime, seller_ids: Collection[UUID] | None
) -> Row[*tuple[Any, ...]] | None:
    """The click for `token` if it is valid at `at` (rule 2), in one SELECT: the click, its
    affiliate, and the longest window among the programs it could earn from."""
    if len(token) > 64:
        return None
    params: dict[str, Any] = {"token": token}
    if seller_ids is not None:
        params["seller_ids"] = list(seller_ids)
    row = run_built(session, _click_stmt, params, seller_ids is not None).first()
    if row is None or row.status != AffiliateStatus.APPROVED or row.window_days is None:
        return None
    clicked_at = as_utc(row.created_at)
    if not clicked_at <= at <= clicked_at + timedelta(days=row.window_days):
        return None
    return row
