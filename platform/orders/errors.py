"""Errors of the order domain, each a stable problem type."""

from __future__ import annotations

from kernel.errors import Conflict, NotFound, Unprocessable


class OrderNotFound(NotFound):
    type = "order-not-found"


class OrderLinkNotFound(NotFound):
    type = "order-link-not-found"
    title = "No order has this link"


class AlarmNotFound(NotFound):
    type = "alarm-not-found"

class RefundNotFound(NotFound):
    type = "refund-not-found"


class SubOrderNotFound(NotFound):
    type = "sub-order-not-found"


class OutOfStock(Conflict):
    type = "out-of-stock"
    title = "Not enough stock"


class IdempotencyKeyReused(Conflict):
    type = "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"


class CartInvalid(Unprocessable):
    type = "cart-invalid"
    title = "The cart cannot be ordered"


class InvalidTransition(Conflict):
    type = "invalid-transition"
    title = "Not allowed in the current state"


class RefundInvalid(Unprocessable):
    type = "refund-invalid"
    title = "The refund cannot be made"
