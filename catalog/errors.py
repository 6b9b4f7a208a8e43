"""Catalog domain errors: each carries its HTTP status and a stable problem type."""

from __future__ import annotations

from kernel.errors import Conflict, Forbidden, NotFound, Unprocessable
from kernel.payout_accounts import PaymentRailUnavailable, PayoutAccountConflict, PayoutAccountInvalid

__all__ = ["PaymentRailUnavailable", "PayoutAccountConflict", "PayoutAccountInvalid"]  # shared with affiliates (kernel)


class SellerNotFound(NotFound):
    type = "seller-not-found"
    title = "Seller not found"


class SellerEmailTaken(Conflict):
    type = "seller-email-taken"
    title = "A seller with this email already exists"


class SellerNotApproved(Conflict):
    type = "seller-not-approved"
    title = "The seller is not approved"


class InvalidSeller(Unprocessable):
    type = "invalid-seller"
    title = "The seller details are invalid"


class ProductNotFound(NotFound):
    type = "product-not-found"
    title = "Product not found"


class VariantNotFound(NotFound):
    type = "variant-not-found"
    title = "Variant not found"


class SkuTaken(Conflict):
    type = "sku-taken"
    title = "SKU already used by this seller"


class ProductArchived(Conflict):
    type = "product-archived"
    title = "The product is archived (read-only)"


class ProductNotPublishable(Conflict):
    type = "product-not-publishable"
    title = "The product cannot be published"


class InsufficientStock(Conflict):
    type = "insufficient-stock"
    title = "Stock cannot go below zero"


class InvalidProduct(Unprocessable):
    type = "invalid-product"
    title = "The product or variant is invalid"


class NotASeller(Forbidden):
    type = "seller-key-required"
    title = "This action needs a seller key"


class ShippingProfileNotFound(NotFound):
    type = "shipping-profile-not-found"
    title = "Shipping profile not found"


class InvalidShipping(Unprocessable):
    type = "invalid-shipping"
    title = "The shipping choice or profile is invalid"
