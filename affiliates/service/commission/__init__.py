"""The commission engine: attribution and every party's share of a cart, in one place.

Checkout (orders.service.checkout) and the preview endpoint (POST /v1/commissions/preview) both call
`resolve_attribution` then `settle_cart`, so a preview is exactly what checkout books.

One module per idea:
* `terms`: the values that go in and come out (CartLine, Attribution, Settlement, the terms);
* `attribution`: who an order is attributed to (storefront, click, coupon, nobody);
* `rules`: the split itself, pure (no database), with the first-order and month-to-date rules;
* `loaders`: the few SELECTs that read a cart's terms;
* `settle`: `settle_cart`, loading then computing.

Other packages import from here, not from the modules.
"""

from __future__ import annotations

from affiliates.service.commission.attribution import resolve_attribution
from affiliates.service.commission.loaders import (
    load_coupon,
    load_program_terms,
    load_terms,
    parse_plan,
)
from affiliates.service.commission.rules import (
    attributed_sale_amounts,
    compute_settlement,
    counted_sale_amounts,
    every_seller_is_new,
    month_key,
    new_to_buyer,
)
from affiliates.service.commission.settle import SessionFirstOrderCheck, settle_cart
from affiliates.service.commission.terms import (
    FUNDED_BY_SELLER,
    ROLE_AFFILIATE,
    ROLE_RECRUITER,
    ROLE_SPLIT_PARTNER,
    SOURCE_CLICK,
    SOURCE_COUPON,
    SOURCE_NONE,
    SOURCE_STOREFRONT,
    AffiliateTerms,
    Attribution,
    CartLine,
    CommissionShare,
    CouponTerms,
    FirstOrderCheck,
    LineSettlement,
    MonthSales,
    ProgramTerms,
    Settlement,
    normalize_coupon_code,
    normalize_email,
)

__all__ = [
    "FUNDED_BY_SELLER",
    "ROLE_AFFILIATE",
    "ROLE_RECRUITER",
    "ROLE_SPLIT_PARTNER",
    "SOURCE_CLICK",
    "SOURCE_COUPON",
    "SOURCE_NONE",
    "SOURCE_STOREFRONT",
    "AffiliateTerms",
    "Attribution",
    "CartLine",
    "CommissionShare",
    "CouponTerms",
    "FirstOrderCheck",
    "LineSettlement",
    "MonthSales",
    "ProgramTerms",
    "SessionFirstOrderCheck",
    "Settlement",
    "attributed_sale_amounts",
    "compute_settlement",
    "counted_sale_amounts",
    "every_seller_is_new",
    "load_coupon",
    "load_program_terms",
    "load_terms",
    "month_key",
    "new_to_buyer",
    "normalize_coupon_code",
    "normalize_email",
    "parse_plan",
    "resolve_attribution",
    "settle_cart",
]
