"""Money amounts, quantities and flags take JSON integers and booleans only: `true`, `"1"` and
`1.0` are not a quantity, `0` and `"true"` not a flag. Through the HTTP API, and a guard over
every request body model the app accepts, so a new loose field fails here."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from pydantic.types import Strict

from marketplace.app import create_app
from tests.conftest import Backend
from tests.orders.world import cart, checkout, ok, worked_example

LOOSE = [True, "1", 1.0]  # each accepted by a lax int field before


@pytest.mark.parametrize("quantity", LOOSE, ids=["true", "string", "float"])
def test_checkout_refuses_a_quantity_that_is_not_a_json_integer(
    client: TestClient, operator: dict[str, str], quantity: Any
) -> None:
    world = worked_example(client, operator)
    body = cart(world, ("X-PRO", 1))
    body["items"][0]["quantity"] = quantity
    answer = checkout(client, "a-store", body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["detail"].startswith("body.items.0.quantity")
    ok(checkout(client, "a-store", cart(world, ("X-PRO", 1))), 201)  # a real integer still orders


def test_seller_and_affiliate_bodies_refuse_loose_numbers_and_flags(
    client: TestClient, operator: dict[str, str]
) -> None:
    world = worked_example(client, operator)
    seller, affiliate = world.sellers["X"].headers, world.affiliates["A"].headers
    product_id, variant_id = world.products["X-PRO"], world.variants["X-PRO"]
    stock = f"/v1/products/{product_id}/variants/{variant_id}/stock"
    variant = f"/v1/products/{product_id}/variants/{variant_id}"
    other = world.seller("Z").headers
    price = {"amount": 100, "currency": "USD"}
    table: list[tuple[str, str, dict[str, str], dict[str, Any]]] = [
        ("POST", stock, seller, {"delta": "5"}),
        ("POST", stock, seller, {"delta": 5.0}),
        ("POST", stock, seller, {"set": True}),
        ("PATCH", variant, seller, {"price": {"amount": "100", "currency": "USD"}}),
        ("PATCH", variant, seller, {"price": {"amount": 100.0, "currency": "USD"}}),
        ("PATCH", variant, seller, {"active": 0}),
        ("PATCH", variant, seller, {"active": "false"}),
        ("PATCH", f"/v1/products/{product_id}", seller, {"requires_shipping": 1}),
        ("POST", "/v1/programs", other, {"requires_approval": 0}),
        ("POST", "/v1/programs", other, {"attribution_window_days": "30"}),
        ("POST", "/v1/programs", other, {"coupon_discount_bps": 10.0}),
        ("POST", f"/v1/programs/{world.programs['X']}/plan-versions", seller,
         {"rules": {"default": {"bps": "800"}}}),
        ("POST", f"/v1/programs/{world.programs['X']}/plan-versions", seller,
         {"rules": {"default": {"flat": True}}}),
        ("POST", "/v1/commissions/preview", affiliate,
         {"items": [{"variant_id": variant_id, "quantity": "2"}], "buyer_email": "b@example.com"}),
        ("POST", "/v1/payout-batches", operator, {"currency": "USD", "preview": 1}),
        ("POST", "/v1/products", seller, {"name": "N", "currency": "USD", "variants": [
            {"sku": "N-1", "name": "One", "price": price, "stock": "3"}]}),
    ]
    for method, path, headers, body in table:
        answer = client.request(method, path, headers=headers, json=body)
        assert answer.status_code == 422, (method, path, body, answer.status_code, answer.text)
        assert answer.json()["type"].endswith("/validation-error"), answer.text
    # The same bodies with real JSON integers and booleans are taken.
    ok(client.post(stock, headers=seller, json={"delta": 5}))
    ok(client.patch(variant, headers=seller, json={"active": True}))
    ok(client.post("/v1/programs", headers=other, json={"requires_approval": False}), 201)


def test_a_charter_version_past_its_integer_column_is_a_422_not_a_database_error(
    client: TestClient, operator: dict[str, str]
) -> None:
    """Found by the fuzz run once it called affiliates' operations with an affiliate's key: a
    version of 2**63 reached the database (a 500 on SQLite, a DataError on PostgreSQL)."""
    world = worked_example(client, operator)
    affiliate, program = world.affiliates["A"].headers, world.programs["X"]
    for path, body in ((f"/v1/programs/{program}/charter-acceptances", {"version": 2**63}),
                       (f"/v1/programs/{program}/charter-acceptances", {"version": 2**31}),
                       (f"/v1/programs/{program}/memberships", {"accept_charter_version": 2**63})):
        answer = client.post(path, headers=affiliate, json=body)
        assert answer.status_code == 422, (path, body, answer.status_code, answer.text)
        assert answer.json()["type"].endswith("/validation-error"), answer.text


def _loose(annotation: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> bool:
    """Whether an int or bool somewhere in `annotation` lacks pydantic's Strict marker."""
    if annotation in (int, bool):
        return not any(isinstance(m, Strict) and m.strict for m in metadata)
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        return _loose(inner, [*metadata, *extra])
    if origin in (Union, types.UnionType, list, tuple, dict, set, frozenset, typing.Sequence):
        return any(_loose(arg) for arg in get_args(annotation) if arg is not type(None))
    return False


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models(arg)]


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's API routes, also inside included routers (FastAPI keeps those as branches)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(_api_routes(route.original_router.routes))
    return found


def test_every_int_and_bool_field_of_every_request_body_is_strict(env: Backend) -> None:
    routes = _api_routes(create_app(runtime=env.runtime).routes)
    seen: set[type[BaseModel]] = set()
    todo = [model for route in routes for param in route.dependant.body_params
            for model in _models(param.field_info.annotation)]
    loose: list[str] = []
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            if _loose(info.annotation, info.metadata):
                loose.append(f"{model.__module__}.{model.__name__}.{name}")
            todo.extend(_models(info.annotation))
    assert len(seen) > 20  # the walk found the bodies (checkout, catalog, programs, plans, ...)
    assert loose == [], f"use StrictInt / StrictBool for: {loose}"
