"""Settings from the environment (and an optional `.env` file), read once per process.

Every component has an embedded default so `marketplace serve` runs with no configuration:
a SQLite file, in-process background tasks and rate limits, and the manual payment rail.
Outside development, default secrets are refused (see `check_production_safety`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_WEBHOOK_SIGNING_SECRET = "whsec_development_only_change_me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"

    # Database: PostgreSQL in production (postgresql+psycopg://...), a SQLite file by default.
    database_url: str = "sqlite:///./kernel.db"
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
    public_base_url: str = "http://127.0.0.1:8000"

    # Secret used to sign our outbound webhooks to sellers and affiliates.
    webhook_signing_secret: SecretStr = SecretStr(DEFAULT_WEBHOOK_SIGNING_SECRET)
    # Whether outbound webhooks may go to loopback, private or link-local addresses (a payee's
    # webhook_url pointing at the platform's own network: SSRF). Unset: allowed in development
    # and tests (local receivers), refused in production.
    webhook_allow_private_hosts: bool | None = None
    # When set, GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>` (Prometheus' bearer_token).
    metrics_token: SecretStr | None = None

    # Rate limits, requests per minute (0 disables).
    rate_limit_per_key_per_minute: int = Field(default=6000, ge=0)
    rate_limit_public_per_minute: int = Field(default=1200, ge=0)

    # Marketplace rules.
    platform_fee_bps: int = Field(default=1000, ge=0, le=10_000)
    seller_return_window_days: int = Field(default=14, ge=0, le=365)
    unpaid_order_timeout_minutes: int = Field(default=60, ge=1)
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
    payout_chunk_size: int = Field(default=50, ge=1, le=1000)  # items one worker takes per transaction
    payout_retry_base_seconds: float = Field(default=5.0, gt=0)  # backoff after a retryable rail error
    payout_stall_seconds: float = Field(default=600.0, gt=0)  # beat re-enqueues runs idle this long
    # Test and demo hook, 0 in production: a pause between each rail call and the commit that records it.
    payout_rail_pause_seconds: float = Field(default=0.0, ge=0, le=60)

    # Load (issue 7): threads per server process that run the sync handlers (the database work);
    # requests beyond it wait in the event loop. None: anyio's default (40). A tuning knob: on
    # the 2-core benchmark machine 4 or 8 did no better than the default (loadtests/README.md).
    server_threads: int | None = Field(default=None, ge=1, le=200)

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
        return self.environment != "production"

    @property
    def tasks_run_in_process(self) -> bool:
        return self.broker_url is None

    @model_validator(mode="after")
    def check_production_safety(self) -> Settings:
        if self.environment == "production":
            if self.webhook_signing_secret.get_secret_value() == DEFAULT_WEBHOOK_SIGNING_SECRET:
                raise ValueError("WEBHOOK_SIGNING_SECRET must be set to a real secret in production")
            if self.is_sqlite:
                raise ValueError("DATABASE_URL must point at PostgreSQL in production")
            if self.stripe_api_key is not None and self.stripe_webhook_secret is None:
                raise ValueError("STRIPE_WEBHOOK_SECRET is required when STRIPE_API_KEY is set")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
