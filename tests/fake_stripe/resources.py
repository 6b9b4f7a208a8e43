"""The fake's Stripe API semantics, independent of HTTP: routing, `expand[]`, generic retrieve and
list endpoints, and the balance. The endpoints live in `connect.py` and `payments.py`. Not
thread-safe: the server serialises calls."""

from __future__ import annotations

import re

from tests.fake_stripe.base import PAGING, Ctx, Handler
from tests.fake_stripe.core import Json, StripeError, check_params, expand, list_page
from tests.fake_stripe.payments import PaymentsAPI

COLLECTIONS = {
    "accounts": "account", "payment_intents": "payment_intent", "charges": "charge", "refunds": "refund",
    "transfers": "transfer", "payouts": "payout", "balance_transactions": "balance_transaction",
    "events": "event",
}  # fmt: skip
LIST_FILTERS: dict[str, tuple[str, ...]] = {
    "account": (),
    "payment_intent": ("customer",),
    "charge": ("payment_intent", "customer", "transfer_group"),
    "refund": ("payment_intent", "charge"),
    "transfer": ("destination", "transfer_group"),
    "payout": ("status", "destination"),
    "balance_transaction": ("type", "source", "currency"),
    "event": ("type",),
}


class StripeAPI(PaymentsAPI):
    def __init__(self, *, api_version: str, strict_capabilities: bool = True, enforce_balances: bool = False):
        super().__init__(
            api_version=api_version, strict_capabilities=strict_capabilities, enforce_balances=enforce_balances
        )
        ids = r"([^/]+)"
        collections = "|".join(COLLECTIONS)
        table: list[tuple[str, str, Handler]] = [
            ("POST", r"/v1/accounts", self.create_account),
            ("POST", rf"/v1/accounts/{ids}", self.update_account),
            ("POST", r"/v1/account_links", self.create_account_link),
            ("POST", r"/v1/payment_intents", self.create_payment_intent),
            ("POST", rf"/v1/payment_intents/{ids}", self.update_payment_intent),
            ("POST", rf"/v1/payment_intents/{ids}/confirm", self.confirm_payment_intent),
            ("POST", rf"/v1/payment_intents/{ids}/cancel", self.cancel_payment_intent),
            ("POST", r"/v1/refunds", self.create_refund),
            ("POST", r"/v1/transfers", self.create_transfer),
            ("POST", rf"/v1/transfers/{ids}", self.update_transfer),
            ("POST", rf"/v1/transfers/{ids}/reversals", self.create_reversal),
            ("GET", rf"/v1/transfers/{ids}/reversals", self.list_reversals),
            ("GET", rf"/v1/transfers/{ids}/reversals/{ids}", self.retrieve_reversal),
            ("POST", r"/v1/payouts", self.create_payout),
            ("POST", rf"/v1/payouts/{ids}/cancel", self.cancel_payout),
            ("GET", r"/v1/balance", self.retrieve_balance),
            ("GET", rf"/v1/({collections})", self.list_objects),
            ("GET", rf"/v1/({collections})/{ids}", self.retrieve_object),
        ]
        self.routes = [(method, re.compile(pattern), handler) for method, pattern, handler in table]

    def dispatch(self, method: str, path: str, params: Json, ctx: Ctx) -> Json:
        if ctx.account is not None and self.store.get_kind(ctx.account) != "account":
            raise StripeError(
                403,
                f"The provided key does not have access to account '{ctx.account}' (or that account does not "
                "exist). Application access may have been revoked.",
                code="account_invalid",
                replayable=False,
            )
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match is not None and route_method == method:
                return expand(handler(ctx, params, *match.groups()), params.get("expand"), self.store)
        raise StripeError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help "
            "at https://support.stripe.com/.",
            replayable=False,
        )

    # --- generic retrieve / list ------------------------------------------------------------

    def retrieve_object(self, ctx: Ctx, params: Json, collection: str, obj_id: str) -> Json:
        check_params(params, ())
        return self.store.get(COLLECTIONS[collection], obj_id, ctx.account)

    def list_objects(self, ctx: Ctx, params: Json, collection: str) -> Json:
        kind = COLLECTIONS[collection]
        filters = LIST_FILTERS[kind]
        check_params(params, (*filters, *PAGING))
        items = self.store.visible(kind, None if kind == "account" else ctx.account)
        return list_page(kind, items, params, f"/v1/{collection}", filters)

    def retrieve_balance(self, ctx: Ctx, params: Json) -> Json:
        check_params(params, ())
        totals = self.balance(ctx.account) or {"usd": 0}
        available = [{"amount": net, "currency": cur, "source_types": {"card": net}} for cur, net in totals.items()]
        pending = [{"amount": 0, "currency": cur, "source_types": {"card": 0}} for cur in totals]
        return {"object": "balance", "available": available, "livemode": False, "pending": pending}
