"""Payee payout accounts: the one onboarding flow sellers and affiliates share.

A payee (seller or affiliate) is paid through Stripe Connect (an Express connected account,
onboarded on Stripe's hosted page) or, on the manual rail, by bank transfer to a reference an
operator has verified. Both domains call `start_onboarding`; the payee row must be locked by the
caller (`FOR UPDATE`) so two concurrent requests cannot both create a Stripe account, and the
idempotency key covers a retry after our own commit failed.
"""

from __future__ import annotations

import enum
import uuid
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from kernel.db import new_id
from kernel.errors import AppError, Conflict, Unprocessable
from kernel.payment_rail import PaymentRail, PaymentRailError
from kernel.schemas import StrictModel
from kernel.settings import Settings


class PayoutAccountStatus(enum.StrEnum):
    NOT_STARTED = "not_started"
    ONBOARDING = "onboarding"  # Stripe account created / bank details sent, not verified yet
    PAYOUTS_ENABLED = "payouts_enabled"


class PayoutAccountInvalid(Unprocessable):
    type = "payout-account-invalid"
    title = "Payout account details are invalid"


class PayoutAccountConflict(Conflict):
    type = "payout-account-conflict"
    title = "The payout account cannot do that in its current state"


class PaymentRailUnavailable(AppError):
    """The payment rail refused or could not be reached; nothing was changed on our side."""

    status = 502
    type = "payment-rail-unavailable"
    title = "The payment provider did not complete the request"


class PayoutAccountIn(StrictModel):
    """Stripe rail: send nothing (or `country`, ISO 3166 alpha-2). Manual rail: `bank_reference`,
    the details an operator wires payouts to (IBAN, account number and bank, or your reference)."""

    bank_reference: str | None = Field(default=None, min_length=1, max_length=200)
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")


class PayoutAccountOut(BaseModel):
    rail: Literal["stripe", "manual"]
    payout_status: PayoutAccountStatus
    stripe_account_id: str | None
    onboarding_url: str | None = Field(description="Stripe's hosted onboarding page (expires in minutes)")
    bank_reference: str | None


class Payee(Protocol):
    id: uuid.UUID
    email: str
    stripe_account_id: str | None
    bank_reference: str | None
    payout_status: str
    stripe_account_synced_at: int | None


def rail_failed(exc: PaymentRailError) -> PaymentRailUnavailable:
    hint = "try again in a moment" if exc.retryable else "the request was refused"
    return PaymentRailUnavailable(f"{exc.message} ({hint})", retryable=exc.retryable, rail_code=exc.code)


def start_onboarding(
    rail: PaymentRail, settings: Settings, payee: Payee, kind: str, data: PayoutAccountIn
) -> str | None:
    """Stripe: create the connected account once and return a fresh onboarding link (calling
    again is how a payee gets a new link when the old one expired). Manual: record the bank
    reference for an operator to verify; returns None. `kind` is "seller" or "affiliate"."""
    if rail.name == "stripe":
        if data.bank_reference is not None:
            raise PayoutAccountInvalid("this platform pays through Stripe: leave bank_reference out")
        try:
            if payee.stripe_account_id is None:
                payee.stripe_account_id = rail.create_connected_account(
                    email=payee.email, metadata={f"{kind}_id": str(payee.id)},
                    idempotency_key=f"{kind}-account-{payee.id}",
                    country=data.country.upper() if data.country else None,
                )
            base = settings.public_base_url.rstrip("/")
            url = rail.onboarding_link(
                payee.stripe_account_id,
                refresh_url=f"{base}/{kind}s/payout-account/refresh",
                return_url=f"{base}/{kind}s/payout-account/return",
                # A link is single-use and expires in minutes: every request gets a new one. Express
                # accounts only take account_onboarding links, also after onboarding.
                idempotency_key=f"{kind}-account-link-{payee.id}-{new_id()}",
            )
        except PaymentRailError as exc:
            raise rail_failed(exc) from exc
        if payee.payout_status == PayoutAccountStatus.NOT_STARTED:
            payee.payout_status = PayoutAccountStatus.ONBOARDING.value
        return url
    if data.bank_reference is None:
        raise PayoutAccountInvalid("bank_reference is required: the account (e.g. IBAN) payouts are wired to")
    if data.country is not None:
        raise PayoutAccountInvalid("country is for Stripe onboarding; this platform pays by bank transfer")
    if payee.bank_reference != data.bank_reference or payee.payout_status == PayoutAccountStatus.NOT_STARTED:
        payee.bank_reference = data.bank_reference
        payee.payout_status = PayoutAccountStatus.ONBOARDING.value
    return None


def verify_manual(rail: PaymentRail, payee: Payee, kind: str) -> None:
    """Operator, manual rail: the bank details were checked; payouts may be sent."""
    if rail.name != "manual":
        raise PayoutAccountConflict("Stripe verifies payout accounts on this platform (account.updated webhook)")
    if payee.bank_reference is None or payee.payout_status == PayoutAccountStatus.NOT_STARTED:
        raise PayoutAccountConflict(f"the {kind} has not sent bank details yet")
    payee.payout_status = PayoutAccountStatus.PAYOUTS_ENABLED.value


def apply_account_update(payee: Payee, account: dict[str, Any], event_created: int) -> bool:
    """Stripe's `account.updated` for the payee's connected account (the caller found it and
    locked its row). Stripe does not deliver in order: an event older than the last one applied
    is ignored (False). The account exists, so the payee is at least onboarding; Stripe may also
    disable payouts later (requirements past due), which takes it back to onboarding."""
    if payee.stripe_account_synced_at is not None and event_created < payee.stripe_account_synced_at:
        return False
    payee.stripe_account_synced_at = event_created
    enabled = account.get("payouts_enabled") is True
    payee.payout_status = (PayoutAccountStatus.PAYOUTS_ENABLED if enabled else PayoutAccountStatus.ONBOARDING).value
    return True
