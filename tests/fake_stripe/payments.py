"""Payments: PaymentIntents, the charges they create, and refunds."""

from __future__ import annotations

from tests.fake_stripe.base import Ctx, parse_currency
from tests.fake_stripe.connect import ConnectAPI
from tests.fake_stripe.core import (
    Json,
    StripeError,
    apply_metadata,
    bad_param,
    check_params,
    format_amount,
    get_bool,
    get_enum,
    get_int,
    get_str,
    invalid,
    new_id,
    now,
)

PI_CREATE = {
    "allowed_payment_method_types", "amount", "amount_details", "application_fee_amount",
    "automatic_payment_methods", "capture_method", "confirm", "confirmation_method", "confirmation_token",
    "currency", "customer", "customer_account", "description", "error_on_requires_action",
    "excluded_payment_method_types", "hooks", "mandate", "mandate_data", "metadata", "off_session",
    "on_behalf_of", "payment_details", "payment_method", "payment_method_configuration",
    "payment_method_data", "payment_method_options", "payment_method_types", "radar_options",
    "receipt_email", "return_url", "setup_future_usage", "shipping", "statement_descriptor",
    "statement_descriptor_suffix", "transfer_data", "transfer_group", "use_stripe_sdk",
}  # fmt: skip
PI_UPDATE = {
    "amount", "application_fee_amount", "currency", "customer", "description", "metadata", "payment_method",
    "payment_method_types", "receipt_email", "setup_future_usage", "shipping", "statement_descriptor",
    "statement_descriptor_suffix", "transfer_data", "transfer_group",
}  # fmt: skip
REFUND_CREATE = {
    "amount", "charge", "currency", "customer", "instructions_email", "metadata", "origin", "payment_intent",
    "reason", "refund_application_fee", "reverse_transfer",
}  # fmt: skip
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
DECLINING_PAYMENT_METHODS = {
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_visa_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "insufficient_funds",
}


class PaymentsAPI(ConnectAPI):
    # --- payment intents --------------------------------------------------------------------

    def create_payment_intent(self, ctx: Ctx, params: Json) -> Json:
        check_params(params, PI_CREATE, ("amount", "currency"))
        amount, currency = get_int(params, "amount", minimum=1) or 0, parse_currency(params)
        if currency == "usd" and amount < 50:
            raise bad_param("Amount must be at least $0.50 usd", param="amount", code="amount_too_small")
        pi_id = new_id("pi")
        automatic = params.get("automatic_payment_methods")
        pi: Json = {
            "id": pi_id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
            "amount_received": 0, "application": None, "application_fee_amount": None,
            "automatic_payment_methods": None, "canceled_at": None, "cancellation_reason": None,
            "capture_method": get_str(params, "capture_method") or "automatic_async",
            "client_secret": f"{pi_id}_secret_{new_id('s', 25)[2:]}", "confirmation_method": "automatic",
            "created": now(), "currency": currency, "customer": None, "description": None,
            "last_payment_error": None, "latest_charge": None, "livemode": False, "metadata": {},
            "next_action": None, "on_behalf_of": get_str(params, "on_behalf_of"), "payment_method": None,
            "payment_method_options": {}, "payment_method_types": params.get("payment_method_types") or ["card"],
            "processing": None, "receipt_email": None, "review": None, "setup_future_usage": None,
            "shipping": None, "statement_descriptor": None, "statement_descriptor_suffix": None,
            "status": "requires_payment_method", "transfer_data": None, "transfer_group": None,
        }  # fmt: skip
        if isinstance(automatic, dict):
            pi["automatic_payment_methods"] = {"enabled": get_bool(automatic, "enabled") or False}
            if "allow_redirects" in automatic:
                pi["automatic_payment_methods"]["allow_redirects"] = automatic["allow_redirects"]
        self._apply_pi_params(pi, params)
        self.store.add("payment_intent", pi, ctx.account)
        self.emit("payment_intent.created", pi, account=ctx.account, ctx=ctx)
        if get_bool(params, "confirm"):
            self._confirm(pi, ctx)
        return pi

    def _apply_pi_params(self, pi: Json, params: Json) -> None:
        for key in ("customer", "description", "receipt_email", "statement_descriptor", "transfer_group"):
            if key in params:
                pi[key] = get_str(params, key)
        if (fee := get_int(params, "application_fee_amount", minimum=0)) is not None:
            pi["application_fee_amount"] = fee
        if (payment_method := get_str(params, "payment_method")) is not None:
            pi.update(payment_method=payment_method, status="requires_confirmation")
        transfer_data = params.get("transfer_data")
        if isinstance(transfer_data, dict):
            destination = get_str(transfer_data, "destination") or ""
            self._account(destination, param="transfer_data[destination]")
            pi["transfer_data"] = {"amount": get_int(transfer_data, "amount"), "destination": destination}
        apply_metadata(pi, params)

    def update_payment_intent(self, ctx: Ctx, params: Json, pi_id: str) -> Json:
        check_params(params, PI_UPDATE)
        pi = self.store.get("payment_intent", pi_id, ctx.account)
        if ({"amount", "currency"} & params.keys()) and pi["status"] not in CANCELABLE:
            raise invalid(
                f"This PaymentIntent's amount could not be updated because it has a status of {pi['status']}.",
                code="payment_intent_unexpected_state",
            )
        if "amount" in params:
            pi["amount"] = get_int(params, "amount", minimum=1)
        if "currency" in params:
            pi["currency"] = parse_currency(params)
        self._apply_pi_params(pi, params)
        return pi

    def confirm_payment_intent(self, ctx: Ctx, params: Json, pi_id: str) -> Json:
        check_params(params, ("payment_method", "return_url", "off_session", "receipt_email", "setup_future_usage"))
        pi = self.store.get("payment_intent", pi_id, ctx.account)
        if (payment_method := get_str(params, "payment_method")) is not None:
            pi["payment_method"] = payment_method
        self._confirm(pi, ctx)
        return pi

    def _confirm(self, pi: Json, ctx: Ctx) -> None:
        if pi["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise invalid(
                f"This PaymentIntent's status is {pi['status']}, so it cannot be confirmed.",
                code="payment_intent_unexpected_state",
            )
        if pi["payment_method"] is None:
            raise invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
            )
        decline_code = DECLINING_PAYMENT_METHODS.get(pi["payment_method"])
        if decline_code is None:
            self.succeed_payment_intent(pi["id"], ctx)
            return
        self.fail_payment_intent(pi["id"], decline_code, ctx)
        error = pi["last_payment_error"]
        raise StripeError(
            402, error["message"], type_="card_error", code="card_declined",
            extra={"decline_code": decline_code, "payment_intent": dict(pi)},
        )  # fmt: skip

    def cancel_payment_intent(self, ctx: Ctx, params: Json, pi_id: str) -> Json:
        check_params(params, ("cancellation_reason",))
        reason = get_enum(
            params, "cancellation_reason", ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
        )
        pi = self.store.get("payment_intent", pi_id, ctx.account)
        if pi["status"] not in CANCELABLE:
            raise invalid(
                f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}. Only a "
                f"PaymentIntent with one of the following statuses may be canceled: {', '.join(CANCELABLE)}.",
                code="payment_intent_unexpected_state",
            )
        pi.update(status="canceled", canceled_at=now(), cancellation_reason=reason)
        self.emit("payment_intent.canceled", pi, account=ctx.account, ctx=ctx)
        return pi

    def succeed_payment_intent(self, pi_id: str, ctx: Ctx | None = None) -> Json:
        owner = self._owner_of(pi_id)
        pi = self.store.get("payment_intent", pi_id, owner)
        if pi["status"] in ("succeeded", "canceled"):
            raise ValueError(f"{pi_id} is already {pi['status']}")
        charge_id = new_id("ch")
        amount, currency = pi["amount"], pi["currency"]
        charge: Json = {
            "id": charge_id, "object": "charge", "amount": amount, "amount_captured": amount,
            "amount_refunded": 0, "application_fee_amount": pi["application_fee_amount"],
            "balance_transaction": self.txn(owner, "charge", amount, currency, charge_id), "captured": True,
            "created": now(), "currency": currency, "customer": pi["customer"], "description": pi["description"],
            "failure_code": None, "failure_message": None, "livemode": False, "metadata": dict(pi["metadata"]),
            "on_behalf_of": pi["on_behalf_of"],
            "outcome": {"network_status": "approved_by_network", "risk_level": "normal", "type": "authorized"},
            "paid": True, "payment_intent": pi_id, "payment_method": pi["payment_method"] or new_id("pm"),
            "refunded": False, "status": "succeeded", "transfer": None, "transfer_data": pi["transfer_data"],
            "transfer_group": pi["transfer_group"],
        }  # fmt: skip
        self.store.add("charge", charge, owner)
        if pi["transfer_data"]:  # a destination charge: Stripe transfers the funds itself
            data = pi["transfer_data"]
            share = data["amount"] if data["amount"] is not None else amount - (pi["application_fee_amount"] or 0)
            transfer = self.transfer(owner, share, currency, data["destination"], source_transaction=charge_id)
            charge["transfer"] = transfer["id"]
        pi.update(
            status="succeeded", amount_received=amount, latest_charge=charge_id, last_payment_error=None,
            payment_method=charge["payment_method"],
        )  # fmt: skip
        self.emit("charge.succeeded", charge, account=owner, ctx=ctx)
        return self.emit("payment_intent.succeeded", pi, account=owner, ctx=ctx)

    def fail_payment_intent(self, pi_id: str, decline_code: str = "generic_decline", ctx: Ctx | None = None) -> Json:
        owner = self._owner_of(pi_id)
        pi = self.store.get("payment_intent", pi_id, owner)
        if pi["status"] in ("succeeded", "canceled"):
            raise ValueError(f"{pi_id} is already {pi['status']}")
        insufficient = decline_code == "insufficient_funds"
        message = "Your card has insufficient funds." if insufficient else "Your card was declined."
        error = {"code": "card_declined", "decline_code": decline_code, "message": message, "type": "card_error"}
        pi.update(status="requires_payment_method", last_payment_error=error)
        return self.emit("payment_intent.payment_failed", pi, account=owner, ctx=ctx)

    # --- refunds ----------------------------------------------------------------------------

    def create_refund(self, ctx: Ctx, params: Json) -> Json:
        check_params(params, REFUND_CREATE)
        reason = get_enum(params, "reason", ("duplicate", "fraudulent", "requested_by_customer"))
        amount = get_int(params, "amount", minimum=1)
        pi_id, charge_id = get_str(params, "payment_intent"), get_str(params, "charge")
        if pi_id is not None:
            pi = self.store.get("payment_intent", pi_id, ctx.account, param="payment_intent", status=400)
            if pi["status"] != "succeeded" or pi["latest_charge"] is None:
                raise invalid(
                    f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                )
            charge_id = pi["latest_charge"]
        elif charge_id is None:
            raise bad_param(
                "One of the following params should be provided for this request: payment_intent or charge.",
                param="payment_intent",
                code="parameter_missing",
            )
        charge = self.store.get("charge", str(charge_id), ctx.account, param="charge", status=400)
        remaining, currency = charge["amount"] - charge["amount_refunded"], charge["currency"]
        if remaining == 0:
            raise invalid(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        if amount is None:
            amount = remaining
        if amount > remaining:
            raise invalid(
                f"Refund amount ({format_amount(amount, currency)}) is greater than unrefunded amount on charge "
                f"({format_amount(remaining, currency)})",
                code="amount_too_large",
                param="amount",
            )
        refund_id = new_id("re")
        refund: Json = {
            "id": refund_id, "object": "refund", "amount": amount,
            "balance_transaction": self.txn(ctx.account, "refund", -amount, currency, refund_id),
            "charge": charge["id"], "created": now(), "currency": currency,
            "destination_details": {"type": "card", "card": {"type": "refund", "reference_status": "pending"}},
            "failure_reason": None, "metadata": {}, "payment_intent": charge["payment_intent"], "reason": reason,
            "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
            "transfer_reversal": None,
        }  # fmt: skip
        apply_metadata(refund, params)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        if get_bool(params, "reverse_transfer") and charge["transfer"]:
            transfer = self.store.get("transfer", charge["transfer"], ctx.account)
            share = amount * transfer["amount"] // charge["amount"]
            refund["transfer_reversal"] = self.reverse(transfer, share, ctx, source_refund=refund_id)["id"]
        self.store.add("refund", refund, ctx.account)
        self.emit("refund.created", refund, account=ctx.account, ctx=ctx)
        self.emit("charge.refunded", charge, account=ctx.account, ctx=ctx)
        return refund

    def fail_refund(self, refund_id: str, failure_reason: str = "expired_or_canceled_card") -> Json:
        owner = self._owner_of(refund_id)
        refund = self.store.get("refund", refund_id, owner)
        if refund["status"] == "failed":
            raise ValueError(f"{refund_id} has already failed")
        charge = self.store.get("charge", refund["charge"], owner)
        charge["amount_refunded"] -= refund["amount"]
        charge["refunded"] = False
        txn = self.txn(owner, "refund_failure", refund["amount"], refund["currency"], refund_id)
        refund.update(status="failed", failure_reason=failure_reason, failure_balance_transaction=txn)
        return self.emit("refund.failed", refund, account=owner)
