"""The HTTP side of the fake: a `ThreadingHTTPServer` on 127.0.0.1 that authenticates like Stripe,
replays idempotent POSTs, injects faults, records requests, and hands the rest to `StripeAPI`."""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, NamedTuple, get_args
from urllib.parse import urlsplit

import stripe

from tests.fake_stripe.base import Ctx
from tests.fake_stripe.core import Json, StripeError, new_id, parse_form
from tests.fake_stripe.resources import StripeAPI
from tests.fake_stripe.webhooks import make_event, webhook_request

FaultMode = Literal["500", "timeout", "drop_after_success", "500_after_success"]
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)


class RecordedRequest(NamedTuple):
    method: str
    path: str
    idempotency_key: str | None


@dataclass
class _Fault:
    path_prefix: str | None
    mode: FaultMode
    remaining: int
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


class _TokenBucket:
    """Stripe's request rate limiter: `rate` tokens a second into a bucket of `burst`; a request
    takes one or is refused."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateStats(NamedTuple):
    """What the rate limiter did since `limit_rate`: requests served and refused (429), and the
    monotonic times of the first and last served request."""

    limit: float
    served: int
    limited: int
    first: float | None
    last: float | None

    @property
    def utilisation(self) -> float:
        """Served requests over what the limit allowed between the first and the last one."""
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return (self.served - 1) / ((self.last - self.first) * self.limit)


# Stripe's answer to a rate-limited request (error type and code as the API sends them; the
# `Stripe-Rate-Limited-Reason` header names the limiter). No `Stripe-Should-Retry`: the SDK does
# not retry it, the caller backs off. The request is not performed, nor stored under its key.
RATE_LIMITED_MESSAGE = ("Request rate limit exceeded. You can learn more about rate limits here "
                        "https://docs.stripe.com/rate-limits.")


@dataclass(frozen=True)
class _IdempotentResult:
    method: str
    path: str
    params: Json
    status: int
    body: Json
    request_id: str


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread: a clean stop
    block_on_close = True

    def __init__(self, fake: FakeStripe) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: a dropped response is unambiguous
    timeout = 10  # seconds a silent client may hold a handler thread

    def _serve(self) -> None:
        server = self.server
        assert isinstance(server, _HTTPServer)
        server.fake._handle(self)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def _mask(key: str) -> str:
    prefix, _, secret = key.rpartition("_")
    return f"{prefix}_{'*' * max(len(secret) - 4, 0)}{secret[-4:]}" if prefix else "*" * len(key)


class FakeStripe:
    """A local Stripe API for the real SDK. See the package docstring for usage and fault modes."""

    def __init__(
        self,
        *,
        api_key: str = "sk_test_fake",
        hang_seconds: float = 3.0,
        strict_capabilities: bool = True,
        enforce_balances: bool = False,
        api_version: str = stripe.api_version,
    ) -> None:
        self.api_key = api_key
        self.hang_seconds = hang_seconds
        self.api = StripeAPI(
            api_version=api_version, strict_capabilities=strict_capabilities, enforce_balances=enforce_balances
        )
        self._lock = threading.RLock()
        self._idempotency: dict[tuple[str, str | None, str], _IdempotentResult] = {}
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._limiter: _TokenBucket | None = None
        self._served_at: list[float] = []
        self._limited = 0
        self._release = threading.Event()  # set to wake handlers hanging in "timeout" mode
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        if self._httpd is not None:
            raise RuntimeError("FakeStripe is already running")
        self._release = threading.Event()
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-stripe-{self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("FakeStripe is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def reset(self) -> None:
        """Forget every object, event, idempotency key, pending fault and recorded request."""
        with self._lock:
            self.api.store.clear()
            self._idempotency.clear()
            self._faults.clear()
            self._requests.clear()
            self._limiter = None
            self._served_at.clear()
            self._limited = 0
            self._release.set()
            self._release = threading.Event()

    # --- fault injection and inspection -----------------------------------------------------

    def fail_next(self, path_prefix: str | None, mode: FaultMode, count: int = 1, *, method: str | None = None) -> None:
        """Make the next `count` requests whose path starts with `path_prefix` (None: any path) and,
        if given, whose `method` matches, fail with `mode`: "500", "timeout", "drop_after_success" or
        "500_after_success" (performed and stored, then answered with a 500)."""
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {FAULT_MODES}")
        with self._lock:
            self._faults.append(_Fault(path_prefix, mode, count, method.upper() if method else None))

    def limit_rate(self, per_second: float | None, *, burst: float | None = None) -> None:
        """Enforce a rate limit like Stripe's: at most `per_second` requests a second (a token
        bucket holding `burst` requests, by default a fifth of a second's worth and at least 1);
        a request over it gets Stripe's 429 `rate_limit` error and is not performed. None: no
        limit. Starts `rate_stats` afresh."""
        with self._lock:
            self._limiter = None if per_second is None else _TokenBucket(
                per_second, burst if burst is not None else max(1.0, per_second / 5))
            self._served_at.clear()
            self._limited = 0

    def rate_stats(self) -> RateStats:
        with self._lock:
            limit = self._limiter.rate if self._limiter else 0.0
            served = self._served_at
            return RateStats(limit, len(served), self._limited, served[0] if served else None,
                             served[-1] if served else None)

    def _take_fault(self, method: str, path: str) -> FaultMode | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(method, path):
                fault.remaining -= 1
                return fault.mode
        return None

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, faulted ones included: (method, path, idempotency_key)."""
        with self._lock:
            return list(self._requests)

    def objects(self, kind: str) -> list[Json]:
        """Copies of every object of `kind` ("transfer", "refund", "payout", "event", ...), oldest first,
        across the platform and all connected accounts."""
        with self._lock:
            return copy.deepcopy(self.api.store.all(kind))

    def object(self, obj_id: str) -> Json:
        with self._lock:
            found = self.api.store.find(obj_id)
            if found is None:
                raise KeyError(obj_id)
            return copy.deepcopy(found.obj)

    def balance(self, account: str | None = None) -> dict[str, int]:
        """Net of all balance transactions per currency, of the platform or a connected account."""
        with self._lock:
            return self.api.balance(account)

    # --- state helpers: what Stripe's dashboard, card networks and banks would do -----------

    def complete_onboarding(self, account_id: str) -> Json:
        """The account finishes onboarding; returns the `account.updated` event."""
        with self._lock:
            return copy.deepcopy(self.api.complete_onboarding(account_id))

    def succeed_payment_intent(self, pi_id: str) -> Json:
        """The customer pays: a charge `ch_...` becomes `latest_charge`; returns `payment_intent.succeeded`."""
        with self._lock:
            return copy.deepcopy(self.api.succeed_payment_intent(pi_id))

    def fail_payment_intent(self, pi_id: str, decline_code: str = "generic_decline") -> Json:
        """The card is declined; returns the `payment_intent.payment_failed` event."""
        with self._lock:
            return copy.deepcopy(self.api.fail_payment_intent(pi_id, decline_code))

    def fail_refund(self, refund_id: str, failure_reason: str = "expired_or_canceled_card") -> Json:
        """The refund bounces; returns the `refund.failed` event."""
        with self._lock:
            return copy.deepcopy(self.api.fail_refund(refund_id, failure_reason))

    def pay_payout(self, payout_id: str) -> Json:
        """The bank accepts the payout; returns the `payout.paid` event."""
        with self._lock:
            return copy.deepcopy(self.api.settle_payout(payout_id))

    def fail_payout(self, payout_id: str, failure_code: str = "account_closed") -> Json:
        """The bank returns the payout (funds go back to the balance); returns `payout.failed`."""
        with self._lock:
            return copy.deepcopy(self.api.settle_payout(payout_id, failure_code))

    def add_balance(self, amount: int, currency: str = "usd", account: str | None = None) -> None:
        """Credit a balance (an `adjustment` balance transaction), for `enforce_balances=True`."""
        with self._lock:
            self.api.txn(account, "adjustment", amount, currency, None)

    def event(
        self, type_: str, data_object: Json, *, account: str | None = None, previous_attributes: Json | None = None
    ) -> Json:
        """Build (and record, so `GET /v1/events/{id}` finds it) a Stripe Event around `data_object`."""
        version = self.api.api_version
        event = make_event(
            type_, data_object, api_version=version, account=account, previous_attributes=previous_attributes
        )
        with self._lock:
            self.api.store.add("event", event, account)
        return copy.deepcopy(event)

    @staticmethod
    def webhook(event: Json, secret: str, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """The signed body and headers Stripe would POST to a webhook endpoint for `event`."""
        return webhook_request(event, secret, timestamp)

    # --- HTTP -------------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        method, url = handler.command, urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode("utf-8") if length else ""
        params = parse_form(url.query if method in ("GET", "DELETE") else body)
        key = handler.headers.get("Idempotency-Key") if method == "POST" else None
        with self._lock:
            self._requests.append(RecordedRequest(method, url.path, key))
            limited = False
            if self._limiter is not None:
                now = time.monotonic()
                limited = not self._limiter.take(now)
                if limited:
                    self._limited += 1
                else:
                    self._served_at.append(now)
            fault = None if limited else self._take_fault(method, url.path)
            release = self._release
        request_id = new_id("req", 14)
        version = handler.headers.get("Stripe-Version") or self.api.api_version
        headers = {"Request-Id": request_id, "Stripe-Version": version}
        if key is not None:
            headers["Idempotency-Key"] = key
        if limited:
            headers["Stripe-Rate-Limited-Reason"] = "global-rate"
            error = StripeError(429, RATE_LIMITED_MESSAGE, code="rate_limit")
            self._send(handler, 429, error.body(request_id), headers)
            return
        if fault == "timeout":  # never answer; close once the client has given up (or on stop/reset)
            release.wait(self.hang_seconds)
            return
        if fault == "500":
            error = StripeError(500, "An unknown error occurred. Please retry.", type_="api_error")
            self._send(handler, 500, error.body(request_id), headers)
            return
        status, payload = self._execute(handler, method, url.path, params, key, request_id, headers)
        if fault == "drop_after_success":  # performed and stored; the client never hears about it
            return
        if fault == "500_after_success":  # performed and stored, yet the client is told it failed
            error = StripeError(500, "An unknown error occurred. Please retry.", type_="api_error")
            self._send(handler, 500, error.body(request_id), headers)
            return
        self._send(handler, status, payload, headers)

    def _execute(
        self,
        handler: _Handler,
        method: str,
        path: str,
        params: Json,
        key: str | None,
        request_id: str,
        headers: dict[str, str],
    ) -> tuple[int, Json]:
        authorization = handler.headers.get("Authorization") or ""
        api_key = authorization.removeprefix("Bearer ").strip() if authorization.startswith("Bearer ") else ""
        if not api_key:
            message = (
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api"
                "#authentication for details, or we can help at https://support.stripe.com/."
            )
            return 401, StripeError(401, message).body()
        if api_key != self.api_key:
            return 401, StripeError(401, f"Invalid API Key provided: {_mask(api_key)}").body()
        account = handler.headers.get("Stripe-Account")
        scope = (api_key, account, key or "")
        with self._lock:
            stored = self._idempotency.get(scope) if key is not None else None
            if stored is not None:
                return self._replay(stored, method, path, params, key or "", headers)
            ctx = Ctx(account=account, request_id=request_id, idempotency_key=key)
            try:
                status, payload, replayable = 200, self.api.dispatch(method, path, params, ctx), True
            except StripeError as error:
                status, payload, replayable = error.status, error.body(request_id), error.replayable
            if key is not None and replayable:
                self._idempotency[scope] = _IdempotentResult(method, path, params, status, payload, request_id)
            return status, payload

    @staticmethod
    def _replay(
        stored: _IdempotentResult, method: str, path: str, params: Json, key: str, headers: dict[str, str]
    ) -> tuple[int, Json]:
        retry_hint = f"Try using a key other than '{key}' if you meant to execute a different request."
        if (stored.method, stored.path) != (method, path):
            message = (
                "Keys for idempotent requests can only be used for the same endpoint they were first used for "
                f"('{stored.method} {stored.path}' vs '{method} {path}'). {retry_hint}"
            )
        elif stored.params != params:
            message = (
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. {retry_hint}"
            )
        else:
            headers.update({"Idempotent-Replayed": "true", "Original-Request": stored.request_id})
            return stored.status, stored.body
        return 400, StripeError(400, message, type_="idempotency_error").body()

    @staticmethod
    def _send(handler: _Handler, status: int, payload: Json, headers: dict[str, str]) -> None:
        data = json.dumps(payload, indent=2).encode("utf-8")
        try:
            handler.send_response(status)
            for name, value in headers.items():
                if value:
                    handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("Access-Control-Allow-Origin", "*")
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client already gave up
            pass
