"""The payment rail: how money enters and leaves the platform.

Two rails share one protocol, so orders and payouts never ask which one is configured:

* `StripeRail` (settings.stripe_api_key set): Stripe Connect with "separate charges and
  transfers". The buyer pays the platform (a PaymentIntent with `transfer_group` = order id);
  sellers and affiliates are Express connected accounts that receive Transfers later.
* `ManualRail` (no Stripe key, the embedded default): nothing leaves the process. Payments are
  marked paid by an operator, transfers and refunds get a manual reference that the payouts
  domain turns into a bank export file.

Rules every caller relies on:

* Every mutating call takes an `idempotency_key` derived from our own row id
  (`payout-item-{id}`, `order-{id}-payment`, `refund-{id}`). Stripe performs a request once per
  key; the SDK retries network errors and 5xx itself (settings.stripe_max_network_retries) with
  the same key, so a timeout after Stripe made the transfer returns that transfer instead of
  making a second one. Callers that retry later (a Celery retry) must pass the same key again.
  Stripe keeps keys for at least 24 hours; the manual rail derives its references from the key,
  so the same key gives the same reference for ever.
* All amounts are integer minor units with an ISO 4217 currency (upper case on our side,
  lower case on Stripe's).
* Every failure is one `PaymentRailError`. `retryable` is True when trying again with the same
  key may succeed (network error, timeout, rate limit, Stripe 5xx) and False when it cannot
  (card declined, invalid request, idempotency key reused with other parameters, auth).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

import stripe

from kernel.settings import Settings

RailName = Literal["stripe", "manual"]
T = TypeVar("T")


class PaymentRailError(Exception):
    """A payment rail call failed. `retryable`: the same call with the same idempotency key may
    succeed later; `code` is the rail's error code (Stripe's `code` / `decline_code`) if any."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.http_status = http_status
        self.request_id = request_id


class RailNotApplicable(PaymentRailError):
    """The operation does not exist on this rail (e.g. an onboarding link on the manual rail)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, code="not_applicable")


class Payment(NamedTuple):
    """A buyer payment: Stripe PaymentIntent `pi_...` (client_secret goes to the buyer's browser)
    or a manual reference (no client secret; an operator marks the order paid)."""

    id: str
    client_secret: str | None
    status: str


class AccountState(NamedTuple):
    """What the rail knows about a payee's connected account."""

    id: str
    payouts_enabled: bool
    details_submitted: bool


class TransferRecord(NamedTuple):
    """A transfer as the rail reports it, for reconciliation. `amount`/`amount_reversed` are minor units."""

    id: str
    destination: str
    amount: int
    amount_reversed: int
    currency: str  # upper case
    transfer_group: str | None
    metadata: dict[str, str]
    created: int  # unix seconds


class PaymentRail(Protocol):
    name: RailName

    def create_connected_account(
        self, *, email: str, metadata: Mapping[str, str], idempotency_key: str, country: str | None = None
    ) -> str:
        """Create the payee's connected account (Stripe Express); returns its id `acct_...`."""
        ...

    def onboarding_link(
        self, account_id: str, *, refresh_url: str, return_url: str, idempotency_key: str, update: bool = False
    ) -> str:
        """A hosted onboarding URL (Stripe Account Link, single-use, expires in minutes).

        Express accounts (what `create_connected_account` makes) take `account_onboarding` links
        only; Stripe serves them again after onboarding to collect new requirements. `update=True`
        asks for `account_update`, which Stripe allows only for accounts whose requirements the
        platform collects (Custom), and refuses for Express accounts."""
        ...

    def retrieve_account(self, account_id: str) -> AccountState: ...

    def create_payment(
        self, *, amount: int, currency: str, transfer_group: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> Payment:
        """Ask the buyer for `amount` minor units of `currency` (Stripe: a PaymentIntent)."""
        ...

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> str:
        """Cancel an unpaid payment; returns its new status."""
        ...

    def refund(self, *, payment_id: str, amount: int, metadata: Mapping[str, str], idempotency_key: str) -> str:
        """Give `amount` minor units of a payment back to the buyer; returns the refund id."""
        ...

    def transfer(
        self,
        *,
        destination: str,
        amount: int,
        currency: str,
        transfer_group: str | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> str:
        """Move `amount` minor units to a payee's account (Stripe Transfer); returns the transfer id."""
        ...

    def reverse_transfer(self, transfer_id: str, *, amount: int | None, idempotency_key: str) -> str:
        """Take back `amount` minor units of a transfer (None: all that is left); returns the reversal id."""
        ...

    def list_transfers(
        self, *, transfer_group: str | None = None, destination: str | None = None
    ) -> list[TransferRecord]:
        """Every transfer of a transfer group or to a destination, oldest first (reconciliation)."""
        ...


# --- Stripe -------------------------------------------------------------------------------------


def _stripe_error(exc: stripe.StripeError) -> PaymentRailError:
    """One error type for callers; `retryable` says whether the same call may later succeed."""
    status = exc.http_status
    code = exc.code
    retryable = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (
        status is not None and status >= 500
    )
    if isinstance(exc, stripe.CardError):
        code = getattr(exc.error, "decline_code", None) or code
    elif isinstance(exc, stripe.IdempotencyError):
        code = code or "idempotency_error"
    message = exc.user_message or str(exc) or type(exc).__name__
    return PaymentRailError(
        f"stripe: {message}", retryable=retryable, code=code, http_status=status, request_id=exc.request_id
    )


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        raise _stripe_error(exc) from exc


def _params(**values: Any) -> Any:
    """Stripe params without the None values (the SDK would send them as empty strings)."""
    return {key: value for key, value in values.items() if value is not None}


def _keyed(idempotency_key: str) -> Any:
    return {"idempotency_key": idempotency_key}


class RateGate:
    """This process's pace towards Stripe, shared by every thread: at most `per_second` HTTP
    requests a second (None: unpaced), every attempt counted, the SDK's own retries included
    (`_PacedRequestsClient`), so a run keeps the account's rate limit busy without flooding it.
    Stripe counts requests per account: with several processes, give each its share.

    After a 429 the caller sleeps `backoff(attempt)`: half to all of `min(2 s, step * 2**attempt)`,
    `step` being one request's interval at the pace (or 50 ms unpaced). Short on purpose: the
    rate limiter frees a slot every `step`, and a long sleep would leave it idle; the jitter keeps
    threads that were refused together from coming back together."""

    MAX_BACKOFF_SECONDS = 2.0

    def __init__(self, per_second: float | None, retries: int = 8) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.retries = retries
        self._next = 0.0
        self._lock = threading.Lock()
        self.rate_limited = 0  # 429s seen by this process (a figure for logs and benchmarks)

    def wait(self) -> None:
        """Take the next request slot at the pace, sleeping until it comes."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)

    def backoff(self, attempt: int) -> None:
        with self._lock:
            self.rate_limited += 1
        step = self.interval or 0.05
        time.sleep(min(self.MAX_BACKOFF_SECONDS, step * 2**attempt) * random.uniform(0.5, 1.0))


class _PacedRequestsClient(stripe.RequestsClient):
    """The SDK's `requests` client, each HTTP attempt (its own retries too) taken through the gate."""

    def __init__(self, gate: RateGate, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._gate = gate

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None,
        *, _usage: list[str] | None = None,
    ) -> Any:
        self._gate.wait()
        return super().request(method, url, headers, post_data)


class StripeRail:
    """Stripe Connect through the official SDK (`stripe.StripeClient`).

    The SDK retries connection errors, timeouts, 409 and 5xx up to `max_network_retries` times
    with the same Idempotency-Key; what is left after that surfaces as a retryable
    `PaymentRailError` and the caller (a Celery task) retries later with the same key.
    """

    name: RailName = "stripe"

    def __init__(self, client: stripe.StripeClient, gate: RateGate | None = None) -> None:
        self.client = client
        self.gate = gate or RateGate(None)

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeRail:
        if settings.stripe_api_key is None:
            raise ValueError("StripeRail needs settings.stripe_api_key")
        base = settings.stripe_api_base.rstrip("/") if settings.stripe_api_base else None
        gate = RateGate(settings.stripe_requests_per_second, settings.stripe_rate_limit_retries)
        client = stripe.StripeClient(
            settings.stripe_api_key.get_secret_value(),
            base_addresses={"api": base, "connect": base, "files": base} if base else None,
            max_network_retries=settings.stripe_max_network_retries,
            http_client=_PacedRequestsClient(gate, timeout=settings.stripe_timeout_seconds),
        )
        return cls(client, gate)

    def _call(self, request: Callable[[], T]) -> T:
        """One API call, errors mapped; a 429 (rate limited) is sent again after a back-off, up to
        the gate's `retries` times, then surfaces as a retryable error. Safe: Stripe performs a
        rate-limited request not at all and stores nothing under its key, so the same call with
        the same idempotency key is still performed once. (The SDK's own retries cover network
        errors, 409 and 5xx; it does not retry a 429 unless told to by `Stripe-Should-Retry`.)"""
        attempt = 0
        while True:
            try:
                with _mapped_errors():
                    return request()
            except PaymentRailError as exc:
                if exc.http_status != 429 or attempt >= self.gate.retries:
                    raise
                self.gate.backoff(attempt)
                attempt += 1

    def create_connected_account(
        self, *, email: str, metadata: Mapping[str, str], idempotency_key: str, country: str | None = None
    ) -> str:
        params = _params(
            type="express", email=email, country=country, metadata=dict(metadata),
            # Separate charges and transfers: the platform charges, the account only receives transfers.
            capabilities={"transfers": {"requested": True}},
        )
        account = self._call(lambda: self.client.v1.accounts.create(params=params, options=_keyed(idempotency_key)))
        return str(account.id)

    def onboarding_link(
        self, account_id: str, *, refresh_url: str, return_url: str, idempotency_key: str, update: bool = False
    ) -> str:
        params: Any = {
            "account": account_id, "refresh_url": refresh_url, "return_url": return_url,
            "type": "account_update" if update else "account_onboarding",
        }
        link = self._call(lambda: self.client.v1.account_links.create(params=params, options=_keyed(idempotency_key)))
        return str(link.url)

    def retrieve_account(self, account_id: str) -> AccountState:
        account = self._call(lambda: self.client.v1.accounts.retrieve(account_id))
        return AccountState(str(account.id), bool(account.payouts_enabled), bool(account.details_submitted))

    def create_payment(
        self, *, amount: int, currency: str, transfer_group: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> Payment:
        params: Any = {
            "amount": amount, "currency": currency.lower(), "transfer_group": transfer_group,
            "metadata": dict(metadata), "automatic_payment_methods": {"enabled": True},
        }
        intent = self._call(lambda: self.client.v1.payment_intents.create(params=params,
                                                                          options=_keyed(idempotency_key)))
        return Payment(str(intent.id), intent.client_secret, str(intent.status))

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> str:
        intent = self._call(lambda: self.client.v1.payment_intents.cancel(
            payment_id, params={"cancellation_reason": "abandoned"}, options=_keyed(idempotency_key)
        ))
        return str(intent.status)

    def refund(self, *, payment_id: str, amount: int, metadata: Mapping[str, str], idempotency_key: str) -> str:
        params: Any = {"payment_intent": payment_id, "amount": amount, "metadata": dict(metadata)}
        refund = self._call(lambda: self.client.v1.refunds.create(params=params, options=_keyed(idempotency_key)))
        return str(refund.id)

    def transfer(
        self,
        *,
        destination: str,
        amount: int,
        currency: str,
        transfer_group: str | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> str:
        params = _params(
            destination=destination, amount=amount, currency=currency.lower(), transfer_group=transfer_group,
            metadata=dict(metadata),
        )
        transfer = self._call(lambda: self.client.v1.transfers.create(params=params, options=_keyed(idempotency_key)))
        return str(transfer.id)

    def reverse_transfer(self, transfer_id: str, *, amount: int | None, idempotency_key: str) -> str:
        reversal = self._call(lambda: self.client.v1.transfers.reversals.create(
            transfer_id, params=_params(amount=amount), options=_keyed(idempotency_key)
        ))
        return str(reversal.id)

    def list_transfers(
        self, *, transfer_group: str | None = None, destination: str | None = None
    ) -> list[TransferRecord]:
        if transfer_group is None and destination is None:
            raise ValueError("list_transfers needs a transfer_group or a destination")
        params = _params(transfer_group=transfer_group, destination=destination, limit=100)
        # Read whole (every page) in one call: a 429 on a later page retries the listing from the start.
        listed = self._call(lambda: list(self.client.v1.transfers.list(params=params).auto_paging_iter()))
        records: list[TransferRecord] = []
        for item in listed:
            metadata = item.to_dict().get("metadata") or {}
            records.append(TransferRecord(
                id=str(item.id), destination=str(item.destination), amount=int(item.amount),
                amount_reversed=int(item.amount_reversed), currency=str(item.currency).upper(),
                transfer_group=item.transfer_group, metadata={str(k): str(v) for k, v in metadata.items()},
                created=int(item.created),
            ))
        # Stripe lists newest first (ties within a second in true order); reconciliation reads
        # in the order money moved.
        records.reverse()
        return records


# --- manual (bank export) -------------------------------------------------------------------


def manual_reference(kind: str, idempotency_key: str) -> str:
    """A stable reference for a manual operation: the same key always gives the same reference,
    so a retried call is a no-op for whoever records it (e.g. `manual_tr_3f9c...`)."""
    digest = hashlib.sha256(f"{kind}:{idempotency_key}".encode()).hexdigest()[:24]
    return f"manual_{kind}_{digest}"


class ManualRail:
    """No payment processor: operators confirm buyer payments and wire payouts by bank transfer
    (the payouts domain writes the export file). Onboarding is a bank reference an operator verifies."""

    name: RailName = "manual"

    def create_connected_account(
        self, *, email: str, metadata: Mapping[str, str], idempotency_key: str, country: str | None = None
    ) -> str:
        raise RailNotApplicable("the manual rail has no connected accounts; sellers send a bank reference")

    def onboarding_link(
        self, account_id: str, *, refresh_url: str, return_url: str, idempotency_key: str, update: bool = False
    ) -> str:
        raise RailNotApplicable("the manual rail has no hosted onboarding; an operator verifies bank details")

    def retrieve_account(self, account_id: str) -> AccountState:
        raise RailNotApplicable("the manual rail has no connected accounts")

    def create_payment(
        self, *, amount: int, currency: str, transfer_group: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> Payment:
        return Payment(manual_reference("pay", idempotency_key), None, "awaiting_bank_transfer")

    def cancel_payment(self, payment_id: str, *, idempotency_key: str) -> str:
        return "canceled"

    def refund(self, *, payment_id: str, amount: int, metadata: Mapping[str, str], idempotency_key: str) -> str:
        return manual_reference("re", idempotency_key)

    def transfer(
        self,
        *,
        destination: str,
        amount: int,
        currency: str,
        transfer_group: str | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> str:
        return manual_reference("tr", idempotency_key)

    def reverse_transfer(self, transfer_id: str, *, amount: int | None, idempotency_key: str) -> str:
        return manual_reference("trr", idempotency_key)

    def list_transfers(
        self, *, transfer_group: str | None = None, destination: str | None = None
    ) -> list[TransferRecord]:
        # Nothing remote to reconcile against: the bank export is the record of manual transfers.
        return []


def make_rail(settings: Settings) -> PaymentRail:
    """Stripe when a key is configured, else the manual rail (the embedded default)."""
    if settings.stripe_api_key is not None:
        return StripeRail.from_settings(settings)
    return ManualRail()
