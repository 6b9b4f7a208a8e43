"""Errors of the payouts domain, each a stable problem type."""

from __future__ import annotations

from kernel.errors import Conflict, NotFound, Unprocessable


class BatchNotFound(NotFound):
    type = "payout-batch-not-found"


class PayoutNotFound(NotFound):
    type = "payout-not-found"


class PayeeNotFound(NotFound):
    type = "payee-not-found"


class ExportNotFound(NotFound):
    type = "payout-export-not-found"
    title = "No bank export for this batch"


class HoldNotFound(NotFound):
    type = "payout-hold-not-found"


class HoldConflict(Conflict):
    type = "payout-hold-conflict"
    title = "The payout hold is not in a state that allows this"


class BatchStateConflict(Conflict):
    type = "payout-batch-state"
    title = "Not allowed in the batch's current state"


class OpenBatchExists(Conflict):
    type = "payout-batch-open"
    title = "An open payout batch exists for this currency"


class NothingToPay(Unprocessable):
    type = "payout-nothing-to-pay"
    title = "Nothing to pay"


class InvalidItemTransition(Conflict):
    """A payout item may only move forward (queued -> frozen -> sending -> paid | failed)."""

    type = "payout-item-transition"
    title = "Payout items only move forward"


class RailMismatch(Conflict):
    type = "payout-rail-mismatch"
    title = "The batch belongs to another payment rail"
