"""Settings from the environment (and an optional `.env` file), read once per process.

Every component has an embedded default so `marketplace serve` runs with no configuration:
a SQLite file, in-process background tasks and rate limits, and the manual payment rail.

Safe by default (README, Configuration):
- no public secret ever signs anything: without WEBHOOK_SIGNING_SECRET the platform signs
  webhooks with a secret generated once per installation and kept in its database
  (kernel/installation.py); the old public development value is refused on PostgreSQL;
- payees' webhooks reach private addresses (SSRF) by default only on the embedded SQLite default
  and in tests;
- `ENVIRONMENT=production` refuses every default that is not fit for it
  (`check_production_safety`); anywhere else, the server and workers log one start-up warning
  naming each insecure default in force (`insecure_defaults`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated, Any, Literal

import structlog
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The development value earlier versions signed with when WEBHOOK_SIGNING_SECRET was unset. It is
# public (anyone could compute every payee's secret from it), so it is refused on PostgreSQL and
# in production, and nothing uses it by default any more.
DEFAULT_WEBHOOK_SIGNING_SECRET = "whsec_development_only_change_me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"

    # Database: PostgreSQL in production (postgresql+psycopg://...), a SQLite file by default.
    database_url: str = "sqlite:///./marketplace.db"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_echo: bool = False

    # Redis backs the cache, rate limits, click counters and (by default) the Celery broker.
    redis_url: str | None = None
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None

    # Payment rail: Stripe Connect when a key is set, else the manual (bank export) rail.
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None  # tests point the real SDK at the fake Stripe server
    stripe_max_network_retries: int = Field(default=2, ge=0, le=10)
    # Stripe's rate limit (issue 18): this process's pace in requests a second (None: unpaced; the
    # account's limit is 100/s live, 25/s in test mode, shared by every process), and how many
    # times one call is sent again after a 429 before it fails as retryable (kernel/payment_rail.py).
    stripe_requests_per_second: float | None = Field(default=None, gt=0, le=10_000)
    stripe_rate_limit_retries: int = Field(default=8, ge=0, le=50)
    public_base_url: str = "http://127.0.0.1:8000"

    # Secret each payee's webhook signing secret is derived from (kernel/outbound.py). Unset: one
    # generated for this installation and kept in its database (required in production).
    webhook_signing_secret: SecretStr | None = None
    # Whether outbound webhooks may go to loopback, private or link-local addresses (a payee's
    # webhook_url pointing at the platform's own network: SSRF). Unset: allowed only on the
    # embedded SQLite default and in tests (local receivers); refused on PostgreSQL.
    webhook_allow_private_hosts: bool | None = None
    # Where the operator team hears of partner-health alarms (`partner.alarm`, signed like every
    # outbound webhook, as recipient `operator`). Unset: the alarms are listed in the API only.
    operator_webhook_url: str | None = None
    # When set, GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>` (Prometheus' bearer_token).
    metrics_token: SecretStr | None = None

    # Rate limits, requests per minute (0 disables).
    rate_limit_per_key_per_minute: int = Field(default=6000, ge=0)
    rate_limit_public_per_minute: int = Field(default=1200, ge=0)

    # Marketplace rules.
    platform_fee_bps: int = Field(default=1000, ge=0, le=10_000)
    seller_return_window_days: int = Field(default=14, ge=0, le=365)
    unpaid_order_timeout_minutes: int = Field(default=60, ge=1)
    # A buyer organization's order above its placer's spending limit holds its stock this long while it waits
    # for an approver; then a beat job cancels it and gives the stock back.
    approval_hold_hours: int = Field(default=48, ge=1)
    payout_minimum_minor: int = Field(default=1000, ge=0)
    payout_export_dir: str = "./payout-exports"

    log_level: str = "INFO"
    log_json: bool = False

    # Catalog and Stripe (issue 3). Connect endpoints (account.* events of connected accounts) have
    # their own signing secret in Stripe; a webhook verifies against either secret.
    stripe_connect_webhook_secret: SecretStr | None = None
    stripe_timeout_seconds: float = Field(default=30.0, gt=0, le=120)  # per HTTP attempt of the SDK
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1)  # older signed timestamps: 400
    catalog_cache_ttl_seconds: int = Field(default=60, ge=1, le=3600)  # hot product reads in the store

    # Payouts (issue 6). Batches wait for an operator's approval unless auto-approved; with a
    # schedule, Celery beat creates one batch per currency every `payout_schedule_seconds`.
    payout_auto_approve: bool = False
    payout_schedule_seconds: float | None = Field(default=None, gt=0)
    payout_chunk_size: int = Field(default=50, ge=1, le=5000)  # items one worker takes per transaction
    # Stripe rail: threads of one run sending transfers at once (each its own item lock and
    # connection), so the rail's rate limit, not the round trip, sets the pace.
    payout_send_concurrency: int = Field(default=4, ge=1, le=64)
    payout_retry_base_seconds: float = Field(default=5.0, gt=0)  # backoff after a retryable rail error
    # A running batch's lease (payouts/service/lease.py): renewed by its run at least every third of it;
    # when it expires (the worker died) a live worker, checking every `payout_lease_check_seconds`,
    # takes it over and resumes the batch.
    payout_lease_seconds: float = Field(default=45.0, ge=1, le=3600)
    payout_lease_check_seconds: float = Field(default=10.0, gt=0, le=600)
    # Test and demo hook, 0 in production: a pause between each rail call and the commit that records it.
    payout_rail_pause_seconds: float = Field(default=0.0, ge=0, le=60)

    # Load (issue 7): threads per server process that run the sync handlers (the database work);
    # requests beyond it wait in the event loop. None: anyio's default (40). A tuning knob: on
    # the 2-core benchmark machine 4 or 8 did no better than the default (loadtests/README.md).
    server_threads: int | None = Field(default=None, ge=1, le=200)

    # The HTTP edge (issue 12). Request bodies past this many bytes answer 413 before they are read.
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Failed authentications (malformed, unknown or revoked key) per client address per minute;
    # past it the address gets 429 before any key lookup (0 disables).
    auth_failures_per_minute: int = Field(default=20, ge=0)
    # Proxies whose X-Forwarded-For is believed (addresses or CIDRs, comma-separated or a JSON
    # list). Empty: the socket's peer is the client, whatever the headers say.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(default_factory=list)
    # One structured log line per request (method, path, status, duration, request id, principal).
    log_requests: bool = True
    # A referral click counts once per visitor (cookie, or keyed hash of address + user agent)
    # per link in this window; repeats and known bots are raw hits only.
    referral_unique_click_window_seconds: int = Field(default=24 * 3600, ge=1)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                value = json.loads(text)
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            return [ip_network(str(item), strict=False) for item in value]
        return value

    # Email (issue 13). Without SMTP_HOST mail stays in the outbox (`marketplace mail` lists it).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "ssl"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    mail_from: str = "Marketplace <no-reply@marketplace.localhost>"
    invitation_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)
    session_ttl_hours: int = Field(default=24 * 14, ge=1, le=24 * 90)  # browser sessions (absolute)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def stripe_enabled(self) -> bool:
        return self.stripe_api_key is not None

    @property
    def broker_url(self) -> str | None:
        return self.celery_broker_url or self.redis_url

    @property
    def webhooks_may_reach_private_hosts(self) -> bool:
        if self.webhook_allow_private_hosts is not None:
            return self.webhook_allow_private_hosts
        return self.environment == "test" or (self.environment == "development" and self.is_sqlite)

    @property
    def tasks_run_in_process(self) -> bool:
        return self.broker_url is None

    @property
    def one_process_writes(self) -> bool:
        """The embedded default (SQLite, no broker): `serve` runs one process there and it makes
        every write (tasks included), so a cache in its memory sees every change. Anywhere else
        there may be several processes (`serve --workers N`, Celery workers), and without
        REDIS_URL nothing is cached (kernel/cache.py says why)."""
        return self.is_sqlite and self.tasks_run_in_process

    @property
    def uses_public_webhook_secret(self) -> bool:
        return (self.webhook_signing_secret is not None
                and self.webhook_signing_secret.get_secret_value() == DEFAULT_WEBHOOK_SIGNING_SECRET)

    def insecure_defaults(self) -> list[str]:
        """Each setting in force that production would refuse, and why it matters (empty in
        production). The server and the workers log them in one warning at start-up."""
        found: list[str] = []
        if self.webhook_signing_secret is None:
            found.append("WEBHOOK_SIGNING_SECRET is unset: webhooks are signed with a secret this installation "
                         "generated and keeps in its database (table installation_secrets); set a managed one")
        elif self.uses_public_webhook_secret:
            found.append("WEBHOOK_SIGNING_SECRET is the public development value: anyone can forge webhooks "
                         "to any payee")
        if self.webhooks_may_reach_private_hosts:
            found.append("WEBHOOK_ALLOW_PRIVATE_HOSTS: payees' webhook URLs may point at loopback, private and "
                         "link-local addresses (127.0.0.1, 169.254.169.254): the platform's own network")
        if self.metrics_token is None:
            found.append("METRICS_TOKEN is unset: GET /metrics is open to anyone who reaches the server")
        return found if self.environment != "production" else []

    @model_validator(mode="after")
    def check_production_safety(self) -> Settings:
        if self.uses_public_webhook_secret and (self.environment == "production" or not self.is_sqlite):
            raise ValueError("WEBHOOK_SIGNING_SECRET is the public development value: anyone could forge "
                             "webhooks with it; set a secret of your own or unset it (a per-installation "
                             "secret is generated)")
        if self.environment == "production":
            if self.webhook_signing_secret is None:
                raise ValueError("WEBHOOK_SIGNING_SECRET must be set to a real secret in production")
            if self.metrics_token is None:
                raise ValueError("METRICS_TOKEN is required in production (GET /metrics is open without it)")
            if self.is_sqlite:
                raise ValueError("DATABASE_URL must point at PostgreSQL in production")
            if self.stripe_api_key is not None and self.stripe_webhook_secret is None:
                raise ValueError("STRIPE_WEBHOOK_SECRET is required when STRIPE_API_KEY is set")
        return self


def warn_insecure_defaults(settings: Settings) -> None:
    """The one start-up warning of a server or worker process not in production: each insecure
    default in force, on its own line (once per process: the embedded default's first-start
    seeding starts the app in-process before the server does)."""
    found = settings.insecure_defaults()
    if found:
        _warn_once(settings.environment, tuple(found))


@lru_cache
def _warn_once(environment: str, found: tuple[str, ...]) -> None:
    """Logs each distinct warning once per process (the cache remembers what was said)."""
    lines = "".join(f"\n  - {line}" for line in found)
    structlog.get_logger(__name__).warning(
        f"ENVIRONMENT={environment}: insecure defaults in force "
        f"(ENVIRONMENT=production refuses to start with them):{lines}"
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
