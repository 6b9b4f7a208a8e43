"""The manual rail's bank export through the API (`GET /v1/payout-batches/{id}/export`): the CSV
an operator wires from and the JSON document, byte for byte the files the run wrote."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fastapi.testclient import TestClient

from kernel.auth import Role
from kernel.ledger import AFFILIATE, SELLER
from tests.conftest import Backend, bearer, issue_key
from tests.payouts.conftest import credit, make_payee
from tests.payouts.test_batches import approve, create, get_batch


def test_a_completed_batch_exports_its_paid_items_as_csv_and_json_for_download(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    seller, affiliate = make_payee(env, SELLER, name="Acme"), make_payee(env, AFFILIATE, name="=Guild")
    credit(env, SELLER, seller, 5000)
    credit(env, AFFILIATE, affiliate, 2500)
    batch = create(client, operator)
    assert client.get(f"/v1/payout-batches/{batch['id']}/export", headers=operator).status_code == 404  # not yet
    approve(client, operator, batch["id"])
    done = get_batch(client, operator, batch["id"])

    answer = client.get(f"/v1/payout-batches/{batch['id']}/export", headers=operator)

    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert f'filename="payout-batch-{batch["id"]}.csv"' in answer.headers["content-disposition"]
    assert answer.content == Path(done["export_path"]).read_bytes()
    lines = list(csv.DictReader(answer.text.splitlines()))
    assert sorted((line["payee_name"], line["amount_minor"]) for line in lines) == [("'=Guild", "2500"),
                                                                                   ("Acme", "5000")]
    document = client.get(f"/v1/payout-batches/{batch['id']}/export", params={"format": "json"}, headers=operator)
    assert document.status_code == 200 and document.headers["content-type"] == "application/json"
    assert (json.loads(document.content)["count"], json.loads(document.content)["total_minor"]) == (2, 7500)


def test_the_export_is_a_404_for_an_unknown_batch_and_refused_to_a_payee(
    env: Backend, client: TestClient, operator: dict[str, str]
) -> None:
    unknown = client.get("/v1/payout-batches/01900000-0000-7000-8000-000000000000/export", headers=operator)
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
    seller = make_payee(env, SELLER)
    credit(env, SELLER, seller, 5000)
    batch = create(client, operator)
    key = issue_key(env, Role.SELLER, seller)
    assert client.get(f"/v1/payout-batches/{batch['id']}/export", headers=bearer(key)).status_code == 403
