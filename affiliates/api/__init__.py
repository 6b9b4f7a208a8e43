"""HTTP routes of the affiliates package, one module per resource: affiliates, programs (with
memberships and plan versions), coupons, storefronts (owner and public), referral links (with the
click redirect), the commission preview; `views` renders rows as response models. Thin: each
handler checks the caller's role, calls one service function, shapes the result.

`router` and `buyer_router` are what marketplace.app includes. FastAPI matches routes in the
order they were added, so the parts are joined here in the order the paths must be tried
(`/v1/affiliates/me` before `/v1/affiliates/{affiliate_id}`). They are joined by taking over the
parts' routes rather than by `include_router`: in this FastAPI an included router stays a nested
router that every request walks (and matches twice) on its way to a route, which costs the hot
routes time; this way the two routers are flat lists of routes, as before the split. Each part
carries its own router dependencies (`StrictQuery`), already in its routes.
"""

from __future__ import annotations

from fastapi import APIRouter

from affiliates.api import affiliates, commissions, coupons, links, programs, storefronts

router = APIRouter(routes=[
    *affiliates.router.routes,
    *programs.router.routes,
    *coupons.router.routes,
    *storefronts.router.routes,
    *links.router.routes,
    *commissions.router.routes,
])
# The public routes every buyer visit hits (a storefront's listing, a product, a referral link),
# in a router of their own that marketplace.app includes right after checkout: FastAPI tries
# routes in inclusion order, and behind the ~40 routes of `router` each match cost ~70 µs.
buyer_router = APIRouter(routes=[*storefronts.buyer_router.routes, *links.buyer_router.routes])

__all__ = ["buyer_router", "router"]
