"""The FastAPI assembly: the API process's composition root (with marketplace.bootstrap)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from celery import Celery
from fastapi import FastAPI

from affiliates import api as affiliates_api
from catalog import api as catalog_api
from kernel import stripe_webhooks
from kernel.errors import install_error_handlers
from kernel.logs import configure_logging
from kernel.middleware import RequestContextMiddleware
from kernel.openapi import install_openapi
from kernel.runtime import Runtime, set_runtime
from kernel.settings import Settings, get_settings, warn_insecure_defaults
from kernel.tasking import install_celery
from marketplace import bootstrap, people_api, sessions_api, system_api
from marketplace.docs_ui import install_docs
from marketplace.subjects import subject_rejected
from orders import api as orders_api
from orders import buyer_account_api, buyer_data_api, buyer_org_api, reports_api
from orders import buyer_api as order_links_api
from payouts import api as payouts_api
from web import install_web

log = structlog.get_logger(__name__)

API_DESCRIPTION = """
Many sellers list products once; many affiliates (market makers) sell them through their
storefronts; buyers order across sellers in one cart; every order settles into one exact
double-entry ledger, and operators run payout batches.

Authenticate with `Authorization: Bearer <api key>` (an organization's key or a person's), or
with the session cookie of `POST /v1/sessions` plus `X-CSRF-Token` on writes. What each role may
do is one table (`GET /v1/me` lists your permissions). Errors are RFC 9457 problem details.
Amounts are integer minor units with an ISO 4217 currency.
"""


def create_app(
    settings: Settings | None = None, runtime: Runtime | None = None, celery: Celery | None = None
) -> FastAPI:
    """The API. `celery`: the Celery app its requests send tasks through (installed for this
    process); by default the one the process already installed (the CLI, a test session), else
    one built from `settings` with every task (`marketplace.bootstrap`)."""
    settings = settings or (runtime.settings if runtime else get_settings())
    configure_logging(settings.log_level, settings.log_json)
    runtime = runtime or Runtime(settings)
    if celery is not None:
        install_celery(celery)
    else:
        bootstrap.process_celery(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        set_runtime(runtime)
        log.info(
            "platform_started",
            database="sqlite" if settings.is_sqlite else "postgresql",
            background_tasks="in-process (no broker configured)" if settings.tasks_run_in_process
            else "celery",
            payment_rail="stripe" if settings.stripe_enabled else "manual (bank export)",
            cache="redis" if settings.redis_url else "in-process" if settings.one_process_writes
            else "off: several processes may serve and REDIS_URL is unset (set it for a shared cache)",
        )
        warn_insecure_defaults(settings)
        yield

    app = FastAPI(
        title="Marketplace platform API",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the app's own files below: no CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    # The orders package's rule, for the affiliates package's commission preview.
    app.state.first_order_check = bootstrap.FIRST_ORDER_CHECK
    app.state.subject_rejected = subject_rejected  # kernel.deps: the rule for rejected payees
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    # Inclusion order is matching order: FastAPI tries each included router's routes in turn
    # (and matches the chosen router twice), so a request for a route near the end of ~100 pays
    # for every regex before it. The hot path goes first: checkout (orders), then the storefront
    # listing, product page and referral redirect (affiliates' buyer routes). No path of one
    # router matches a route of another (tests/loadtests/test_hot_path.py checks), so the order
    # changes cost only.
    app.include_router(orders_api.router)
    app.include_router(affiliates_api.buyer_router)
    app.include_router(affiliates_api.router)
    app.include_router(catalog_api.router)
    app.include_router(system_api.router)
    app.include_router(people_api.router)
    app.include_router(sessions_api.router)
    app.include_router(order_links_api.router)
    app.include_router(buyer_org_api.router)
    app.include_router(buyer_account_api.router)
    app.include_router(buyer_data_api.router)
    app.include_router(payouts_api.router)
    app.include_router(reports_api.router)
    app.include_router(stripe_webhooks.router)
    # Error responses per operation, read from the code of these packages (kernel/openapi.py).
    install_openapi(app, packages=("kernel", "catalog", "affiliates", "orders", "payouts", "marketplace"))
    install_docs(app)
    install_web(app)  # the pages: after the API, so they document nothing and cost the API nothing
    return app
