"""The manual rail's CSV export is opened in spreadsheets: text a payee typed never runs as a
formula there, and reconciliation still reads the bank reference the payee gave."""

from __future__ import annotations

import csv
from pathlib import Path

from fastapi.testclient import TestClient

from kernel.ledger import SELLER
from tests.conftest import Backend
from tests.payouts.conftest import audit, credit, items_of, make_payee
from tests.payouts.test_batches import approve, create, get_batch


def test_a_payee_name_or_bank_reference_that_looks_like_a_formula_is_exported_as_text(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    payee = make_payee(env, SELLER, name='=HYPERLINK("https://evil.example","Pay")', bank="+DE00 1234")
    credit(env, SELLER, payee, 5000)
    batch = create(client, operator)
    approve(client, operator, batch["id"])

    exported = Path(get_batch(client, operator, batch["id"])["export_path"]).read_text()
    [line] = list(csv.DictReader(exported.splitlines()))
    assert line["payee_name"] == '\'=HYPERLINK("https://evil.example","Pay")'
    assert line["bank_reference"] == "'+DE00 1234"
    assert [i.status for i in items_of(env, batch["id"])] == ["paid"]
    reconciliation = client.get(f"/v1/payout-batches/{batch['id']}/reconciliation", headers=operator).json()
    assert (reconciliation["status"], reconciliation["mismatches"]) == ("ok", [])
    assert audit(env) == []
