"""The OpenAPI document is accurate, small and usable by tools: one problem-details schema, the
errors each operation can really return, human summaries, examples that validate, a typed client
generated without a warning, and docs that work offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel

from catalog.schemas import ProductCreate, ProductOut
from kernel.auth import Role
from kernel.errors import PROBLEM_CONTENT_TYPE, ProblemDetail
from kernel.openapi import raised_errors, summary_of
from marketplace.app import create_app
from orders.schemas import CheckoutIn, OrderBuyerOut, OrderOperatorOut
from payouts.schemas import BatchCreateIn, PayoutBatchOut
from tests.conftest import Backend, bearer, issue_key, make_settings

PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetail"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(make_settings(f"sqlite:///{tmp_path_factory.mktemp('spec') / 'x.db'}", None))
    return app.openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def errors_of(operation: dict[str, Any]) -> set[int]:
    return {int(code) for code in operation["responses"] if code[0] in "45"}


def test_every_error_response_refers_to_the_one_problem_details_schema(spec: dict[str, Any]) -> None:
    text = json.dumps(spec)
    # It was 695 KB with the problem schema copied 762 times; ~405 KB with the buyers' routes (issue 15).
    assert len(text) < 550_000, len(text)
    assert text.count('"title": "ProblemDetail"') == 1
    for path, method, operation in operations(spec):
        for code, response in operation["responses"].items():
            if code[0] in "45" and (path, code) != ("/readyz", "503"):  # readyz answers its checks
                assert response["content"] == {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}, (path, method, code)
                assert "Problem `type`: `" in response["description"], (path, method, code)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


# Public routes that take a person's email and password: a wrong password is their 401.
PASSWORD_ROUTES = {("/v1/sessions", "post"), ("/v1/auth/api-keys", "post"), ("/v1/sellers", "post"),
                   ("/v1/affiliates", "post"), ("/v1/invitations/accept", "post"), ("/v1/buyer-organizations", "post"),
                   ("/v1/buyer-accounts", "post")}


def test_operations_list_only_the_errors_they_can_return(spec: dict[str, Any]) -> None:
    paths = spec["paths"]
    assert errors_of(paths["/healthz"]["get"]) == set()
    assert errors_of(paths["/"]["get"]) == set()
    for path, method, operation in operations(spec):
        if "security" not in operation and (path, method) not in PASSWORD_ROUTES:  # public: no key errors
            assert not errors_of(operation) & {401, 403}, (path, method)
        if "{" not in path and 404 in errors_of(operation):  # 404 where an id is looked up
            assert path in {"/v1/payout-holds", "/v1/affiliates/me/clicks", "/v1/referral-links",
                            "/v1/commissions/preview", "/v1/webhooks/stripe", "/v1/password-resets/confirm",
                            "/v1/invitations/accept", "/v1/buyer-organizations/me/orders",
                            "/v1/relationship-contacts", "/v1/sessions/current",
                            "/v1/buyer-accounts/confirm",
                            # a person without a buyer account has none to read
                            "/v1/buyer-accounts/me", "/v1/me/orders"}, (path, method)
        if operation.get("parameters") or operation.get("requestBody"):
            assert 422 in errors_of(operation), (path, method)
        if operation.get("requestBody"):  # the body limit, answered before routing
            assert 413 in errors_of(operation), (path, method)
    # 400: a NUL (%00) in the path or query, refused before routing.
    assert errors_of(paths["/v1/storefronts/{slug}/orders"]["post"]) == {400, 404, 409, 413, 422, 429}
    assert "`out-of-stock`" in paths["/v1/storefronts/{slug}/orders"]["post"]["responses"]["409"]["description"]
    assert errors_of(paths["/v1/sellers"]["post"]) == {401, 409, 413, 422, 429}  # seller-email-taken; a wrong password
    assert errors_of(paths["/v1/orders"]["get"]) == {400, 401, 403, 422, 429}  # operator list: no 404, no 409
    assert errors_of(paths["/v1/programs"]["get"]) == {400, 401, 403, 422, 429}  # 403: a role without programs.read
    assert errors_of(paths["/v1/products/{product_id}/publish"]["post"]) >= {401, 403, 404, 409}


def test_errors_the_api_answers_are_the_ones_it_documents(
    client: TestClient, env: Backend, spec: dict[str, Any]
) -> None:
    seller = bearer(issue_key(env, Role.SELLER, uuid.uuid4()))
    answers = [
        ("/v1/payout-batches", "get", client.get("/v1/payout-batches", headers=seller)),
        ("/v1/payout-batches", "get", client.get("/v1/payout-batches")),
        ("/v1/products/{product_id}", "get", client.get(f"/v1/products/{uuid.uuid4()}", headers=seller)),
        ("/v1/sellers", "post", client.post("/v1/sellers", content=b"{", headers={"Content-Type": "application/json"})),
        ("/v1/orders", "get", client.get("/v1/orders?sttus=paid", headers=seller)),
    ]
    for path, method, answer in answers:
        assert answer.status_code in errors_of(spec["paths"][path][method]), (path, answer.status_code)
        assert answer.headers["content-type"] == PROBLEM_CONTENT_TYPE
        problem_type = answer.json()["type"].rsplit("/", 1)[1]
        assert f"`{problem_type}`" in spec["paths"][path][method]["responses"][str(answer.status_code)]["description"]


def test_every_operation_has_a_human_summary_and_a_description(tmp_path: Path, spec: dict[str, Any]) -> None:
    app = create_app(make_settings(f"sqlite:///{tmp_path / 'x.db'}", None))
    default_summaries = {
        context.name.replace("_", " ").title() for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.name is not None
    }
    for path, method, operation in operations(spec):
        assert operation.get("description"), (path, method)
        summary = operation["summary"]
        assert summary not in default_summaries, (path, method, summary)  # "Accept", "Balances"
        assert len(summary) <= 80 and not summary.endswith("."), (path, method, summary)
    assert spec["paths"]["/v1/sub-orders/{sub_order_id}/accept"]["post"]["summary"].startswith("Seller: accept")


@pytest.mark.parametrize("model", [CheckoutIn, OrderBuyerOut, OrderOperatorOut, ProductCreate, ProductOut,
                                   BatchCreateIn, PayoutBatchOut, ProblemDetail])
def test_main_schemas_carry_an_example_that_validates(spec: dict[str, Any], model: type[BaseModel]) -> None:
    [example] = spec["components"]["schemas"][model.__name__]["examples"]
    model.model_validate(example)


def test_worked_example_order_adds_up(spec: dict[str, Any]) -> None:
    order = spec["components"]["schemas"]["OrderOperatorOut"]["examples"][0]
    shares = order["shares"]
    assert order["total"]["amount"] == sum(s["amount"]["amount"] for s in shares)
    assert order["total"]["amount"] == sum(
        s["platform_fee"]["amount"] + s["commission"]["amount"] + s["seller_net"]["amount"] for s in shares)
    assert order["commission_total"]["amount"] == sum(c["amount"]["amount"] for c in order["commissions"])


def test_a_typed_client_generates_from_the_document_without_a_warning(tmp_path: Path, spec: dict[str, Any]) -> None:
    (tmp_path / "openapi.json").write_text(json.dumps(spec))
    bin_dir = Path(sys.executable).parent  # the tool and the ruff it runs on its output
    result = subprocess.run(
        [str(bin_dir / "openapi-python-client"), "generate", "--path", "openapi.json", "--output-path", "client",
         "--meta", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "warning" not in output.lower(), output[-3000:]
    checkout = (tmp_path / "client" / "api" / "checkout").glob("checkout_in_storefront*.py")
    source = next(checkout).read_text()
    # Error responses are parsed into the problem model, not dropped.
    assert "response.status_code == 409" in source and "ProblemDetail.from_dict" in source


def test_docs_page_serves_swagger_ui_from_the_application_with_no_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/static/swagger-ui/") for asset in assets), assets
    assert "http://" not in page.text and "https://" not in page.text
    assert "'/openapi.json'" in page.text
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 500, asset
    assert client.get("/static/swagger-ui/LICENSE").status_code == 200
    assert client.get("/redoc").status_code == 404  # ReDoc only exists on a CDN


def test_the_root_leads_to_the_docs_and_the_health_checks(client: TestClient) -> None:
    index = client.get("/")
    assert index.status_code == 200
    links = index.json()
    for link in ("docs", "openapi", "health", "readiness"):
        assert client.get(links[link]).status_code == 200, link


def test_summaries_are_the_docstrings_first_sentence_cut_at_a_clause_outside_code() -> None:
    assert summary_of("Operator: one seller.\n\nMore.") == "Operator: one seller"
    assert summary_of("Operator: payout holds, newest first, a page at a time (`active=true`: only those in "
                      "force).") == "Operator: payout holds, newest first, a page at a time"
    assert summary_of("Change a variant's stock. `{\"delta\": n}` adds units.") == "Change a variant's stock"


def test_the_errors_a_route_can_raise_are_found_through_calls_and_error_factories() -> None:
    from orders import api as orders_api
    from orders.errors import CartInvalid, IdempotencyKeyReused, OutOfStock

    errors = raised_errors([orders_api.checkout_in_storefront], frozenset({"kernel", "catalog", "affiliates",
                                                                          "orders"}))
    assert {OutOfStock, CartInvalid, IdempotencyKeyReused} <= errors  # OutOfStock comes from _out_of_stock()
