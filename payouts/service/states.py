"""The payout item state machine: `queued -> frozen -> sending -> paid | failed` (and
`queued -> skipped`, `frozen -> failed`). It only moves forward; the database trigger of
migration 0005 refuses the same moves this guard refuses, so even a bug elsewhere cannot send an
item back to be paid again."""

from __future__ import annotations

from kernel.clock import clock
from payouts.errors import InvalidItemTransition
from payouts.models import ITEM_TRANSITIONS, ItemStatus, PayoutItem


def advance(item: PayoutItem, new: ItemStatus) -> None:
    """Move `item` to `new`, stamping the time of the step; refuse any other move."""
    current = ItemStatus(item.status)
    if new not in ITEM_TRANSITIONS[current]:
        raise InvalidItemTransition(f"payout item {item.id} cannot go from {current} to {new}")
    now = clock.now()
    item.status = new.value
    if new is ItemStatus.FROZEN:
        item.frozen_at = now
    elif new is ItemStatus.SENDING:
        item.sending_at = item.sending_at or now
    else:
        item.settled_at = now
