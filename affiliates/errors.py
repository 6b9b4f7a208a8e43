"""Domain errors of the affiliates package (problem+json through kernel.errors)."""

from __future__ import annotations

from kernel.errors import Conflict, Forbidden, NotFound, Unprocessable
from kernel.payout_accounts import PaymentRailUnavailable, PayoutAccountConflict, PayoutAccountInvalid

# Shared with sellers (the payout-account rules live in the kernel), re-exported for this package.
__all__ = ["PaymentRailFailed", "PaymentRailUnavailable", "PayoutAccountConflict", "PayoutAccountInvalid"]


class AffiliateNotFound(NotFound):
    type = "affiliate-not-found"


class AffiliateExists(Conflict):
    type = "affiliate-exists"


class AffiliateNotApproved(Forbidden):
    type = "affiliate-not-approved"
    title = "Affiliate not approved"


class UnknownReferralCode(Unprocessable):
    type = "unknown-referral-code"


class InvalidTransition(Conflict):
    type = "invalid-transition"


class ProgramNotFound(NotFound):
    type = "program-not-found"


class ProgramExists(Conflict):
    type = "program-exists"


class SellerNotFound(NotFound):
    type = "seller-not-found"


class MembershipNotFound(NotFound):
    type = "membership-not-found"


class MembershipExists(Conflict):
    type = "membership-exists"


class NotProgramMember(Conflict):
    type = "not-program-member"
    title = "Not an approved member of the seller's program"


class PlanVersionConflict(Conflict):
    type = "plan-version-conflict"


class InvalidPlan(Unprocessable):
    type = "invalid-plan"


class StorefrontNotFound(NotFound):
    type = "storefront-not-found"


class SlugTaken(Conflict):
    type = "slug-taken"


class ProductNotFound(NotFound):
    type = "product-not-found"


class ProductNotListable(Conflict):
    type = "product-not-listable"


class ListingNotFound(NotFound):
    type = "listing-not-found"


class InvalidSplits(Unprocessable):
    type = "invalid-splits"


class LinkNotFound(NotFound):
    type = "referral-link-not-found"


class CodeTaken(Conflict):
    type = "code-taken"


class UnknownCoupon(Unprocessable):
    type = "unknown-coupon"
    title = "Unknown coupon code"


class CouponNotApplicable(Unprocessable):
    type = "coupon-not-applicable"


class CouponNotFound(NotFound):
    type = "coupon-not-found"


class UnknownStorefront(Unprocessable):
    type = "unknown-storefront"


class CartInvalid(Unprocessable):
    type = "cart-invalid"


class InvalidInput(Unprocessable):
    type = "invalid-input"


PaymentRailFailed = PaymentRailUnavailable


class CharterNotAccepted(Unprocessable):
    type = "charter-not-accepted"
    title = "The program's data-sharing charter must be accepted"


class CharterNotFound(NotFound):
    type = "charter-not-found"
