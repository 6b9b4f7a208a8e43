"""Connect: accounts and their onboarding, account links, transfers and transfer reversals, payouts."""

from __future__ import annotations

from tests.fake_stripe.base import PAGING, APIBase, Ctx, empty_list, parse_currency
from tests.fake_stripe.core import (
    Json,
    StripeError,
    apply_metadata,
    bad_param,
    check_params,
    format_amount,
    get_enum,
    get_int,
    get_str,
    invalid,
    list_page,
    new_id,
    no_such,
    now,
)

ACCOUNT_FIELDS = {
    "account_token", "business_profile", "business_type", "capabilities", "company", "default_currency",
    "documents", "email", "external_account", "groups", "individual", "metadata", "settings",
    "tos_acceptance",
}  # fmt: skip
TRANSFER_CREATE = {
    "amount", "currency", "description", "destination", "metadata", "source_transaction", "source_type",
    "transfer_group",
}  # fmt: skip
PAYOUT_CREATE = {
    "amount", "currency", "description", "destination", "metadata", "method", "payout_method", "source_type",
    "statement_descriptor",
}  # fmt: skip
ONBOARDING_REQUIREMENTS = ["business_type", "external_account", "tos_acceptance.date", "tos_acceptance.ip"]


def _requirements(due: list[str]) -> Json:
    return {
        "alternatives": [], "current_deadline": None, "currently_due": list(due),
        "disabled_reason": "requirements.past_due" if due else None, "errors": [],
        "eventually_due": list(due), "past_due": list(due), "pending_verification": [],
    }  # fmt: skip


class ConnectAPI(APIBase):
    # --- accounts ---------------------------------------------------------------------------

    def create_account(self, ctx: Ctx, params: Json) -> Json:
        check_params(params, ACCOUNT_FIELDS | {"controller", "country", "type"})
        type_ = get_enum(params, "type", ("standard", "express", "custom"))
        if type_ is None and "controller" not in params:
            raise bad_param("Missing required param: type.", param="type", code="parameter_missing")
        account_id = new_id("acct", 16)
        account: Json = {
            "id": account_id, "object": "account", "business_profile": {"mcc": None, "name": None, "url": None},
            "business_type": None, "capabilities": {}, "charges_enabled": False,
            "controller": {"is_controller": True, "type": "application"}, "country": "US", "created": now(),
            "default_currency": "usd", "details_submitted": False, "email": None,
            "external_accounts": empty_list(f"/v1/accounts/{account_id}/external_accounts"),
            "future_requirements": _requirements([]), "metadata": {}, "payouts_enabled": False,
            "requirements": _requirements(ONBOARDING_REQUIREMENTS),
            "settings": {
                "payouts": {"debit_negative_balances": True, "schedule": {"delay_days": 2, "interval": "daily"}}
            },
            "tos_acceptance": {"date": None}, "type": type_ or "none",
        }  # fmt: skip
        if country := get_str(params, "country"):
            account["country"] = country.upper()
        self._apply_account_params(account, params)
        self.store.add("account", account)
        return account

    def update_account(self, ctx: Ctx, params: Json, account_id: str) -> Json:
        check_params(params, ACCOUNT_FIELDS)
        account = self.store.get("account", account_id, None)
        before = {key: account[key] for key in ("email", "metadata", "business_profile", "capabilities")}
        self._apply_account_params(account, params)
        previous = {key: value for key, value in before.items() if account[key] != value}
        self.emit("account.updated", account, account=account_id, ctx=ctx, previous=previous)
        return account

    def _apply_account_params(self, account: Json, params: Json) -> None:
        for key in ("email", "business_type", "default_currency"):
            if (value := get_str(params, key)) is not None:
                account[key] = value
        for key in ("business_profile", "settings", "tos_acceptance", "company", "individual"):
            if isinstance(params.get(key), dict):
                account[key] = {**account.get(key, {}), **params[key]}
        capabilities = params.get("capabilities")
        if isinstance(capabilities, dict):
            account["capabilities"] = dict(account["capabilities"])
            for name, spec in capabilities.items():
                if isinstance(spec, dict) and spec.get("requested") == "true":
                    account["capabilities"].setdefault(name, "active" if account["charges_enabled"] else "inactive")
                elif isinstance(spec, dict) and spec.get("requested") == "false":
                    account["capabilities"].pop(name, None)
        apply_metadata(account, params)

    def complete_onboarding(self, account_id: str) -> Json:
        account = self.store.get("account", account_id, None)
        previous = {key: account[key] for key in ("charges_enabled", "payouts_enabled", "details_submitted")}
        previous["requirements"] = account["requirements"]
        capabilities = {"card_payments": "active", "transfers": "active"}
        capabilities.update(dict.fromkeys(account["capabilities"], "active"))
        bank: Json = {
            "id": new_id("ba"), "object": "bank_account", "account": account_id, "bank_name": "STRIPE TEST BANK",
            "country": account["country"], "currency": account["default_currency"], "default_for_currency": True,
            "last4": "6789", "status": "new",
        }  # fmt: skip
        account.update(
            charges_enabled=True, payouts_enabled=True, details_submitted=True, capabilities=capabilities,
            requirements=_requirements([]), tos_acceptance={"date": now(), "ip": "127.0.0.1"},
            external_accounts={**account["external_accounts"], "data": [bank], "total_count": 1},
        )  # fmt: skip
        return self.emit("account.updated", account, account=account_id, previous=previous)

    def create_account_link(self, ctx: Ctx, params: Json) -> Json:
        allowed = ("account", "collect", "collection_options", "refresh_url", "return_url", "type")
        check_params(params, allowed, required=("account", "type"))
        get_enum(params, "type", ("account_onboarding", "account_update"))
        account_id = str(params["account"])
        self._account(account_id, param="account")
        created = now()
        url = f"https://connect.stripe.com/setup/e/{account_id}/{new_id('al')[3:]}"
        link: Json = {"object": "account_link", "created": created, "expires_at": created + 300, "url": url}
        return self.store.add("account_link", link, ctx.account, key=url)

    # --- transfers and reversals ------------------------------------------------------------

    def create_transfer(self, ctx: Ctx, params: Json) -> Json:
        check_params(params, TRANSFER_CREATE, ("amount", "currency", "destination"))
        amount, currency = get_int(params, "amount", minimum=1) or 0, parse_currency(params)
        destination = self._account(str(params["destination"]), param="destination")
        if self.strict_capabilities and destination["capabilities"].get("transfers") != "active":
            raise StripeError(
                400,
                "Your destination account needs to have at least one of the following capabilities enabled: "
                "transfers, crypto_transfers, legacy_payments",
                code="insufficient_capabilities_for_transfer",
                param="destination",
                replayable=False,
            )
        source = get_str(params, "source_transaction")
        if source is not None:
            self.store.get("charge", source, ctx.account, param="source_transaction", status=400)
        else:
            self._require_funds(ctx.account, amount, currency)
        return self.transfer(ctx.account, amount, currency, destination["id"], params, ctx, source_transaction=source)

    def transfer(
        self,
        owner: str | None,
        amount: int,
        currency: str,
        destination: str,
        params: Json | None = None,
        ctx: Ctx | None = None,
        *,
        source_transaction: str | None = None,
    ) -> Json:
        params = params or {}
        transfer_id, payment_id = new_id("tr"), new_id("py")
        transfer: Json = {
            "id": transfer_id, "object": "transfer", "amount": amount, "amount_reversed": 0,
            "balance_transaction": self.txn(owner, "transfer", -amount, currency, transfer_id),
            "created": now(), "currency": currency, "description": get_str(params, "description"),
            "destination": destination, "destination_payment": payment_id, "livemode": False, "metadata": {},
            "reversals": empty_list(f"/v1/transfers/{transfer_id}/reversals"), "reversed": False,
            "source_transaction": source_transaction, "source_type": "card",
            "transfer_group": get_str(params, "transfer_group"),
        }  # fmt: skip
        apply_metadata(transfer, params)
        self.txn(destination, "payment", amount, currency, payment_id)
        self.store.add("transfer", transfer, owner)
        self.emit("transfer.created", transfer, account=owner, ctx=ctx)
        return transfer

    def update_transfer(self, ctx: Ctx, params: Json, transfer_id: str) -> Json:
        check_params(params, ("description", "metadata"))
        transfer = self.store.get("transfer", transfer_id, ctx.account)
        if "description" in params:
            transfer["description"] = get_str(params, "description")
        apply_metadata(transfer, params)
        self.emit("transfer.updated", transfer, account=ctx.account, ctx=ctx)
        return transfer

    def create_reversal(self, ctx: Ctx, params: Json, transfer_id: str) -> Json:
        check_params(params, ("amount", "description", "metadata", "refund_application_fee"))
        transfer = self.store.get("transfer", transfer_id, ctx.account)
        remaining, currency = transfer["amount"] - transfer["amount_reversed"], transfer["currency"]
        amount = get_int(params, "amount", minimum=1)
        if remaining == 0:
            raise invalid(f"Transfer {transfer_id} has already been fully reversed.", code="amount_too_large")
        if amount is not None and amount > remaining:
            raise invalid(
                f"Reversal amount ({format_amount(amount, currency)}) is greater than the amount remaining on "
                f"transfer {transfer_id} ({format_amount(remaining, currency)}).",
                code="amount_too_large",
                param="amount",
            )
        return self.reverse(transfer, remaining if amount is None else amount, ctx, params)

    def reverse(
        self, transfer: Json, amount: int, ctx: Ctx, params: Json | None = None, *, source_refund: str | None = None
    ) -> Json:
        reversal_id, currency = new_id("trr"), transfer["currency"]
        payment_refund_id = new_id("pyr")
        reversal: Json = {
            "id": reversal_id, "object": "transfer_reversal", "amount": amount,
            "balance_transaction": self.txn(ctx.account, "transfer_refund", amount, currency, reversal_id),
            "created": now(), "currency": currency, "destination_payment_refund": payment_refund_id,
            "metadata": {}, "source_refund": source_refund, "transfer": transfer["id"],
        }  # fmt: skip
        apply_metadata(reversal, params or {})
        self.txn(transfer["destination"], "payment_refund", -amount, currency, payment_refund_id)
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        reversals = transfer["reversals"]
        reversals["data"].insert(0, reversal)  # the same dict as in the store: stays in sync
        reversals["total_count"] += 1
        self.store.add("transfer_reversal", reversal, ctx.account)
        self.emit("transfer.reversed", transfer, account=ctx.account, ctx=ctx)
        return reversal

    def list_reversals(self, ctx: Ctx, params: Json, transfer_id: str) -> Json:
        check_params(params, PAGING)
        self.store.get("transfer", transfer_id, ctx.account)
        items = [r for r in self.store.visible("transfer_reversal", ctx.account) if r["transfer"] == transfer_id]
        return list_page("transfer_reversal", items, params, f"/v1/transfers/{transfer_id}/reversals")

    def retrieve_reversal(self, ctx: Ctx, params: Json, transfer_id: str, reversal_id: str) -> Json:
        check_params(params, ())
        reversal = self.store.get("transfer_reversal", reversal_id, ctx.account)
        if reversal["transfer"] != transfer_id:
            raise no_such("transfer_reversal", reversal_id)
        return reversal

    # --- payouts ----------------------------------------------------------------------------

    def create_payout(self, ctx: Ctx, params: Json) -> Json:
        check_params(params, PAYOUT_CREATE, ("amount", "currency"))
        amount, currency = get_int(params, "amount", minimum=1) or 0, parse_currency(params)
        method = get_enum(params, "method", ("standard", "instant")) or "standard"
        destination = get_str(params, "destination")
        if ctx.account is not None:
            account = self.store.get("account", ctx.account, None)
            if self.strict_capabilities and not account["payouts_enabled"]:
                raise invalid("Payouts are not enabled for this account.", code="payouts_not_allowed")
            banks = account["external_accounts"]["data"]
            destination = destination or (banks[0]["id"] if banks else None)
        self._require_funds(ctx.account, amount, currency)
        created, payout_id = now(), new_id("po")
        payout: Json = {
            "id": payout_id, "object": "payout", "amount": amount, "application_fee": None,
            "application_fee_amount": None, "arrival_date": created + (0 if method == "instant" else 2 * 86400),
            "automatic": False, "balance_transaction": self.txn(ctx.account, "payout", -amount, currency, payout_id),
            "created": created, "currency": currency, "description": get_str(params, "description"),
            "destination": destination or new_id("ba"), "failure_balance_transaction": None, "failure_code": None,
            "failure_message": None, "livemode": False, "metadata": {}, "method": method, "original_payout": None,
            "reconciliation_status": "not_applicable", "reversed_by": None, "source_type": "card",
            "statement_descriptor": get_str(params, "statement_descriptor"), "status": "pending",
            "type": "bank_account",
        }  # fmt: skip
        apply_metadata(payout, params)
        self.store.add("payout", payout, ctx.account)
        self.emit("payout.created", payout, account=ctx.account, ctx=ctx)
        return payout

    def cancel_payout(self, ctx: Ctx, params: Json, payout_id: str) -> Json:
        check_params(params, ())
        payout = self.store.get("payout", payout_id, ctx.account)
        if payout["status"] != "pending":
            raise invalid(f"Payout {payout_id} cannot be canceled because it is {payout['status']}.")
        self.txn(ctx.account, "payout_cancel", payout["amount"], payout["currency"], payout_id)
        payout["status"] = "canceled"
        self.emit("payout.canceled", payout, account=ctx.account, ctx=ctx)
        return payout

    def settle_payout(self, payout_id: str, failure_code: str | None = None) -> Json:
        owner = self._owner_of(payout_id)
        payout = self.store.get("payout", payout_id, owner)
        if payout["status"] not in ("pending", "in_transit"):
            raise ValueError(f"{payout_id} is already {payout['status']}")
        if failure_code is None:
            payout["status"] = "paid"
            return self.emit("payout.paid", payout, account=owner)
        txn = self.txn(owner, "payout_failure", payout["amount"], payout["currency"], payout_id)
        payout.update(
            status="failed",
            failure_code=failure_code,
            failure_message=f"The payout failed ({failure_code}).",
            failure_balance_transaction=txn,
        )
        return self.emit("payout.failed", payout, account=owner)
