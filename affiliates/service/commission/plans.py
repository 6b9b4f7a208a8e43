"""Commission plans as data, and their evaluation for one order line (pure: no database).

A plan version's `rules` (JSON, validated on the way in by `affiliates.schemas.PlanRules`):

    {
      "default": {"bps": 800},                       # or {"flat": 100}: minor units per unit sold
      "products": [{"product_id": "...", "bps": 1000}],      # per-product overrides
      "variants": [{"variant_id": "...", "flat": 250}],      # per-variant (level) overrides
      "tiers": [{"min_orders": 10, "bps": 1000}, {"min_amount": 500000, "bps": 1200}],
      "first_order_bonus": {"bps": 200},             # or {"flat": 500}, or null
      "recruiter_override_bps": 100,                 # 0 = none
      "quota_bonus": {"bps": 300}                    # or {"flat": 100}, or null
    }

Written rules (the engine's contract; tests/affiliates/test_plan_rules.py holds one row per rule):

1. Base rate of a line, most specific wins: a variant override, else a product override, else
   the default (volume tier applied). There is no tie between levels; within one level an id is
   listed at most once (the schema refuses duplicates).
2. `bps` rules pay `bps_share(line_amount, bps)` (round half even of amount * bps / 10 000);
   `flat` rules pay `flat * quantity` (flat amounts are per unit, in the line's currency's
   minor units). `line_amount` is what the buyer pays for the line (after any coupon discount).
3. Volume tiers replace the DEFAULT rule only (explicit product / variant overrides are the
   seller's deliberate price for that item and win). A tier is reached when every threshold it
   names is met by the affiliate's month-to-date sales with this seller BEFORE this order:
   `orders_before >= min_orders` and `amount_before >= min_amount` (amount in the order's
   currency). So `min_orders: 10` pays from the 11th order of the calendar month (UTC). If several
   tiers are reached, the highest bps applies (equal bps: the one listed first).
4. First-order bonus: when this buyer has never ordered from this seller, the bonus (bps of the
   line amount, or flat per unit) is added to the line's commission.
5. The commission (base + bonus) is the selling affiliate's pool; splits divide the pool (see
   engine). The recruiter override is `bps_share(line_amount, recruiter_override_bps)`, paid on
   top to the affiliate that recruited the selling affiliate (one level), funded by the seller.
7. Quota bonus: when the affiliate has a quota in this program for the calendar month (UTC) of
   orders and/or revenue (affiliates.models.Quota) and its month-to-date sales with this seller
   BEFORE this order meet every target it names (the counters of rule 3), the bonus (bps of the
   line amount, or flat per unit) is added to the line's commission: sales past the quota earn
   more. No quota for the month: no bonus.
8. Nothing is negative and the seller's net never goes below zero: if fee + pool + override
   would exceed the line amount, the pool is cut to what is left after the fee, then the override
   to what is left after the pool.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernel.money import bps_share


@dataclass(frozen=True, slots=True)
class Rate:
    """Exactly one of bps (basis points of the line amount) or flat (minor units per unit)."""

    bps: int | None = None
    flat: int | None = None

    def amount(self, line_amount: int, quantity: int) -> int:
        if self.bps is not None:
            return bps_share(line_amount, self.bps)
        return (self.flat or 0) * quantity

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> Rate | None:
        if not raw:
            return None
        if raw.get("bps") is not None:
            return cls(bps=int(raw["bps"]))
        if raw.get("flat") is not None:
            return cls(flat=int(raw["flat"]))
        return None


ZERO = Rate(bps=0)


@dataclass(frozen=True, slots=True)
class Tier:
    bps: int
    min_orders: int | None = None
    min_amount: int | None = None

    def reached(self, orders_before: int, amount_before: int) -> bool:
        if self.min_orders is not None and orders_before < self.min_orders:
            return False
        return not (self.min_amount is not None and amount_before < self.min_amount)


@dataclass(frozen=True, slots=True)
class Plan:
    default: Rate
    products: Mapping[uuid.UUID, Rate]
    variants: Mapping[uuid.UUID, Rate]
    tiers: tuple[Tier, ...] = ()
    first_order_bonus: Rate | None = None
    recruiter_override_bps: int = 0
    quota_bonus: Rate | None = None

    @classmethod
    def parse(cls, rules: Mapping[str, Any]) -> Plan:
        def overrides(key: str, id_field: str) -> dict[uuid.UUID, Rate]:
            found: dict[uuid.UUID, Rate] = {}
            for item in rules.get(key) or ():
                rate = Rate.parse(item)
                if rate is not None:
                    found.setdefault(uuid.UUID(str(item[id_field])), rate)
            return found

        tiers = tuple(
            Tier(bps=int(t["bps"]), min_orders=t.get("min_orders"), min_amount=t.get("min_amount"))
            for t in rules.get("tiers") or ()
        )
        return cls(
            default=Rate.parse(rules.get("default")) or ZERO,
            products=overrides("products", "product_id"),
            variants=overrides("variants", "variant_id"),
            tiers=tiers,
            first_order_bonus=Rate.parse(rules.get("first_order_bonus")),
            recruiter_override_bps=int(rules.get("recruiter_override_bps") or 0),
            quota_bonus=Rate.parse(rules.get("quota_bonus")),
        )

    def tier_rate(self, orders_before: int, amount_before: int) -> Rate | None:
        """The reached tier with the highest bps (ties: listed first), or None (rule 3)."""
        best: Tier | None = None
        for tier in self.tiers:
            if tier.reached(orders_before, amount_before) and (best is None or tier.bps > best.bps):
                best = tier
        return Rate(bps=best.bps) if best is not None else None

    def base_rate(self, variant_id: uuid.UUID, product_id: uuid.UUID, tier: Rate | None) -> Rate:
        """Rule 1 and 3: variant > product > (tier or default)."""
        rate = self.variants.get(variant_id) or self.products.get(product_id)
        if rate is not None:
            return rate
        return tier or self.default


@dataclass(frozen=True, slots=True)
class LineCommission:
    pool: int  # the selling affiliate's commission, before splits
    recruiter_override: int


def evaluate_line(
    plan: Plan,
    *,
    variant_id: uuid.UUID,
    product_id: uuid.UUID,
    quantity: int,
    line_amount: int,
    platform_fee: int,
    tier: Rate | None,
    first_order: bool,
    has_recruiter: bool,
    past_quota: bool = False,
) -> LineCommission:
    """Rules 1-8 for one line. All amounts in minor units."""
    pool = plan.base_rate(variant_id, product_id, tier).amount(line_amount, quantity)
    if first_order and plan.first_order_bonus is not None:
        pool += plan.first_order_bonus.amount(line_amount, quantity)
    if past_quota and plan.quota_bonus is not None:
        pool += plan.quota_bonus.amount(line_amount, quantity)
    override = bps_share(line_amount, plan.recruiter_override_bps) if has_recruiter else 0
    budget = max(line_amount - platform_fee, 0)
    pool = min(max(pool, 0), budget)
    override = min(max(override, 0), budget - pool)
    return LineCommission(pool=pool, recruiter_override=override)
