"""Shared state and plumbing of the fake Stripe API: who is calling, the object store, balance
transactions (one per money movement, per account), balances, and events."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.fake_stripe.core import Json, Store, bad_param, format_amount, get_str, invalid, new_id, no_such, now
from tests.fake_stripe.webhooks import make_event

Handler = Callable[..., Json]

PAGING = ("limit", "starting_after", "ending_before", "created")
REPORTING_CATEGORY = {
    "charge": "charge", "refund": "refund", "refund_failure": "refund_failure", "transfer": "transfer",
    "transfer_refund": "transfer_reversal", "payment": "charge", "payment_refund": "refund",
    "payout": "payout", "payout_cancel": "payout_reversal", "payout_failure": "payout_reversal",
    "adjustment": "other_adjustment",
}  # fmt: skip


@dataclass
class Ctx:
    """Who is calling: `account` is the Stripe-Account header (None: the platform itself)."""

    account: str | None = None
    request_id: str | None = None
    idempotency_key: str | None = None


def empty_list(url: str) -> Json:
    return {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": url}


def parse_currency(params: Mapping[str, Any]) -> str:
    value = get_str(params, "currency") or ""
    if not re.fullmatch(r"[A-Za-z]{3}", value):
        raise bad_param(f"Invalid currency: {value}", param="currency", code="parameter_invalid_string")
    return value.lower()


class APIBase:
    def __init__(self, *, api_version: str, strict_capabilities: bool = True, enforce_balances: bool = False):
        self.api_version = api_version
        self.strict_capabilities = strict_capabilities
        self.enforce_balances = enforce_balances
        self.store = Store()

    def emit(
        self, type_: str, obj: Json, *, account: str | None = None, ctx: Ctx | None = None, previous: Json | None = None
    ) -> Json:
        event = make_event(
            type_,
            obj,
            api_version=self.api_version,
            account=account,
            previous_attributes=previous,
            request_id=ctx.request_id if ctx else None,
            idempotency_key=ctx.idempotency_key if ctx else None,
        )
        return self.store.add("event", event, account)

    def txn(self, owner: str | None, type_: str, amount: int, currency: str, source: str | None) -> str:
        created = now()
        obj: Json = {
            "id": new_id("txn"), "object": "balance_transaction", "amount": amount, "available_on": created,
            "created": created, "currency": currency, "description": None, "exchange_rate": None, "fee": 0,
            "fee_details": [], "net": amount, "reporting_category": REPORTING_CATEGORY[type_], "source": source,
            "status": "available", "type": type_,
        }  # fmt: skip
        return str(self.store.add("balance_transaction", obj, owner)["id"])

    def balance(self, owner: str | None) -> dict[str, int]:
        totals: dict[str, int] = {}
        for txn in self.store.visible("balance_transaction", owner):
            totals[txn["currency"]] = totals.get(txn["currency"], 0) + txn["net"]
        return totals

    def _require_funds(self, owner: str | None, amount: int, currency: str) -> None:
        available = self.balance(owner).get(currency, 0)
        if self.enforce_balances and available < amount:
            raise invalid(
                "You have insufficient available funds in your Stripe account "
                f"({format_amount(available, currency)} available).",
                code="balance_insufficient",
            )

    def _account(self, account_id: str, *, param: str) -> Json:
        if self.store.get_kind(account_id) != "account":
            raise no_such("destination" if param == "destination" else "account", account_id, param=param, status=400)
        return self.store.get("account", account_id, None)

    def _owner_of(self, obj_id: str) -> str | None:
        found = self.store.find(obj_id)
        if found is None:
            raise KeyError(obj_id)
        return found.owner
