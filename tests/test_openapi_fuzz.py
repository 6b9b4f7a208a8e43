"""Schemathesis over the whole OpenAPI: no 5xx and no response that breaks its schema.

It grows with every endpoint. Examples are bounded so the run stays short: the main run tries
MAIN_RUN_EXAMPLES per operation, every operation and check included; the same test with the full
count (FULL_EXAMPLES) is marked `exhaustive`, left out of the main run and run on its own with
`pytest -m exhaustive tests/test_openapi_fuzz.py` (before a release, after an API change). It runs
on a SQLite platform of its own (the API tests cover the same handlers on PostgreSQL).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from kernel import auth, permissions
from kernel.auth import Role
from kernel.db import session_scope
from kernel.runtime import Runtime
from marketplace.app import create_app
from marketplace.migrate import upgrade
from tests.conftest import bearer, make_settings

if TYPE_CHECKING:
    from schemathesis.specs.openapi.schemas import OpenApiCase


def _fuzz_runtime() -> Runtime:
    url = f"sqlite:///{tempfile.mkdtemp(prefix='fuzz-')}/fuzz.db"
    upgrade(url)
    # The fuzzer sends many bad keys (its auth checks): the failed-auth throttle would answer 429 to
    # whatever comes next from this address (a route with a required header, say), so it is off.
    return Runtime(make_settings(url, None, rate_limit_per_key_per_minute=0, rate_limit_public_per_minute=0,
                                 auth_failures_per_minute=0))


RUNTIME = _fuzz_runtime()
APP: FastAPI = create_app(runtime=RUNTIME)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def keys() -> Iterator[dict[str, dict[str, str]]]:
    """A key of each kind's top role (operator, an approved seller and affiliate, a buyer
    organization), so that each operation is called by a key that may call it: with the operator's
    key alone, a seller's, an affiliate's or a buyer's operation would only ever answer 403."""
    with TestClient(APP) as client:
        with session_scope(RUNTIME.sessions) as session:
            operator = bearer(auth.issue_key(session, Role.OPERATOR, None, "fuzz").key)
        found = {permissions.OPERATOR: operator}
        for kind, path, body in (
            (permissions.SELLER, "/v1/sellers", {"name": "Fuzz Seller", "email": "seller@fuzz.example"}),
            (permissions.AFFILIATE, "/v1/affiliates", {"name": "Fuzz Affiliate", "email": "affiliate@fuzz.example"}),
            (permissions.BUYER, "/v1/buyer-organizations", {
                "name": "Fuzz Buyers", "email": "buyer@fuzz.example", "owner_name": "Ada",
                "password": "fuzz-buying-passphrase"}),
        ):
            signed_up = client.post(path, json=body)
            assert signed_up.status_code == 201, signed_up.text
            answer = signed_up.json()
            found[kind] = bearer(answer["api_key"])
            if kind in (permissions.SELLER, permissions.AFFILIATE):
                subject = answer["seller" if kind == permissions.SELLER else "affiliate"]["id"]
                approved = client.post(f"{path}/{subject}/approve", headers=operator)
                assert approved.status_code == 200, approved.text
        yield found  # the app's lifespan runs while the cases do


def headers_for(case: OpenApiCase, keys: dict[str, dict[str, str]]) -> dict[str, str]:
    """The key of the first kind (operator, seller, affiliate, buyer) whose top role may call the
    operation (kernel.permissions); the operator's for a public operation."""
    needed = permissions.OPERATION_PERMISSIONS.get(permissions.operation(case.method, case.path))
    for kind in permissions.KINDS:
        if needed is None or needed in permissions.permissions_of(kind, permissions.TOP_ROLE[kind]):
            return keys[kind]
    raise AssertionError(f"no kind may call {case.method} {case.path}")


MAIN_RUN_EXAMPLES = 8  # about a third of the full count, on every operation (163 of them), every run
FULL_EXAMPLES = 25
SETTINGS = {"deadline": None, "suppress_health_check": list(HealthCheck)}


def _call_and_validate(case: OpenApiCase, keys: dict[str, dict[str, str]]) -> None:
    # Every check but two. positive_data_acceptance: business rules that span fields (a seller
    # key needs a subject, a price needs a known currency) are 4xx by design, not schema bugs.
    # negative_data_rejection: FastAPI ignores unknown query parameters by design, and the
    # "missing Authorization" variants are re-authenticated by these headers.
    # timeout: past SQLite's 30 s busy timeout (kernel.db), so a request that waits for the file's
    # write lock on a loaded machine answers late instead of failing the run (seen once in CI).
    case.call_and_validate(
        headers=headers_for(case, keys), timeout=60,
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )


@schema.parametrize()
@settings(max_examples=MAIN_RUN_EXAMPLES, **SETTINGS)  # type: ignore[arg-type]
def test_api_never_answers_5xx_or_off_schema(case: OpenApiCase, keys: dict[str, dict[str, str]]) -> None:
    _call_and_validate(case, keys)


@pytest.mark.exhaustive
@schema.parametrize()
@settings(max_examples=FULL_EXAMPLES, **SETTINGS)  # type: ignore[arg-type]
def test_api_never_answers_5xx_or_off_schema_on_the_full_example_count(
    case: OpenApiCase, keys: dict[str, dict[str, str]]
) -> None:
    _call_and_validate(case, keys)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI keeps a branch)
            yield from _api_routes(route.original_router.routes)


# Served but not operations of the JSON API: the pages (platform/web, HTML forms), Swagger UI, and
# Prometheus' text format.
NOT_IN_THE_DOCUMENT = {"/docs", "/metrics"}


def test_the_run_covers_every_operation_the_app_serves() -> None:
    """The run is parametrized from the document: a route left out of it (include_in_schema=False)
    would never be fuzzed. Every operation the app serves, but the pages, is in the document."""
    document = APP.openapi()["paths"]
    documented = {(method.upper(), path) for path, methods in document.items() for method in methods}
    served = {(method, route.path) for route in _api_routes(APP.routes)
              if not route.endpoint.__module__.startswith("web.") and route.path not in NOT_IN_THE_DOCUMENT
              for method in (route.methods or set()) - {"HEAD"}}
    assert served - documented == set()
    assert len(documented) > 150  # the storefront directory, reports, alarms, charter, buyer organizations...
    assert sum(1 for result in schema.get_all_operations()) == len(documented)
