"""`GET /v1/ledger/audit`: the ledger audit over HTTP, check by check, for the console's page."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from kernel.auth import Role
from marketplace.bootstrap import audit_check_names
from tests.conftest import Backend, bearer, issue_key
from tests.orders.world import cart, checkout, ok, worked_example


def test_the_audit_passes_every_check_then_fails_the_one_a_share_edited_behind_its_back_breaks(
    client: TestClient, operator: dict[str, str], env: Backend
) -> None:
    world = worked_example(client, operator)
    order = ok(checkout(client, "a-store", cart(world, ("X-PRO", 1), ("Y-KIT", 2))), 201)
    ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))
    clean = ok(client.get("/v1/ledger/audit", headers=operator))
    assert clean["passed"] is True
    assert [(c["name"], c["passed"]) for c in clean["checks"]] == [(name, True) for name in audit_check_names()]

    with env.runtime.engine.begin() as conn:
        conn.execute(text("UPDATE order_lines SET platform_fee_amount = platform_fee_amount + 1 WHERE sku = 'Y-KIT'"))
    found = ok(client.get("/v1/ledger/audit", headers=operator))

    assert found["passed"] is False
    failed = [c for c in found["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["order_splits_are_exact"]
    assert failed[0]["finding_count"] == len(failed[0]["findings"]) >= 1


def test_only_operators_may_run_the_audit(client: TestClient, operator: dict[str, str], env: Backend) -> None:
    world = worked_example(client, operator)
    assert client.get("/v1/ledger/audit", headers=world.sellers["X"].headers).status_code == 403
    assert client.get("/v1/ledger/audit", headers=bearer(issue_key(env, Role.OPERATOR))).status_code == 200
