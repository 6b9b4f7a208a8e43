"""Affiliate business rules (no HTTP), one module per idea:

* applications: affiliates apply, get approved/rejected, profile, payout onboarding
* programs: seller programs, memberships, versioned commission plans
* storefronts (+ storefront_cache): storefronts, listings, the public cached views
* links: referral links, clicks, click counters (+ visitors: bots and unique-visitor keys)
* coupons: seller coupon codes tied to affiliates
* commission: the commission engine (attribution, the split, versioned plans, loaders)
* preview: the commission preview (the same engine, writing nothing)
* sales: the month-to-date sales counter the volume tiers read
* charters: each program's versioned data-sharing charter and the affiliates' acceptances

Names other packages use are re-exported here (checkout imports `storefront_for_checkout`, the
counter's `record_attributed_sale`, and its one-statement form `attributed_sale_rows` +
`count_sales_from_json`)."""

from __future__ import annotations

from affiliates.service.checkout_support import CheckoutStorefront, storefront_for_checkout
from affiliates.service.sales import (
    attributed_sale_rows,
    count_sales,
    count_sales_from_json,
    monthly_sales,
    record_attributed_sale,
)

__all__ = [
    "CheckoutStorefront",
    "attributed_sale_rows",
    "count_sales",
    "count_sales_from_json",
    "monthly_sales",
    "record_attributed_sale",
    "storefront_for_checkout",
]
