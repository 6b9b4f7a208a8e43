"""What the seller panel's and the affiliate portal's browser tests set up through the public API
(as a newcomer would with curl): a paid order on the demo storefront, an API session of a demo
owner, a new member in a given role (invited, the invitation read from `marketplace mail`), and a
payout of a demo owner (a USD batch paid when it has none yet)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx

from tests.embedded_server import newcomer_env
from tests.web.conftest import Site, log_in

STOREFRONT = "makers-guild-demo"
TOKEN = re.compile(r"token=([A-Za-z0-9_\-]+)")


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def paid_order(site: Site, skus: tuple[str, ...] = ("LUMEN-PRO", "NW-CABLE")) -> dict[str, Any]:
    """An order across two sellers through the public checkout of the demo storefront, marked
    paid with the operator key: the operator's view of it (shares and commissions)."""
    with httpx.Client(base_url=site.base_url, timeout=30) as client:
        products = ok(client.get(f"/v1/storefronts/{STOREFRONT}/products", params={"limit": 200}))["items"]
        variants = {v["sku"].removesuffix("-demo"): v["id"] for p in products for v in p["variants"]}
        buyer = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
        order = ok(client.post(f"/v1/storefronts/{STOREFRONT}/orders", headers={"Idempotency-Key": uuid.uuid4().hex},
                               json={"items": [{"variant_id": variants[sku], "quantity": 1} for sku in skus],
                                     "buyer": {"email": buyer, "name": "Panel Buyer"},
                                     "shipping_address": {"line1": "1 Test Way", "city": "Springfield",
                                                          "postal_code": "12345", "country": "US"}}), 201)
        operator = {"Authorization": f"Bearer {site.operator_key}"}
        return ok(client.post(f"/v1/orders/{order['id']}/mark-paid", headers=operator))  # type: ignore[no-any-return]


def session_client(site: Site, email: str, password: str) -> tuple[httpx.Client, dict[str, Any]]:
    """An API client logged in as a person (session cookie + CSRF header), and its `GET /v1/me`."""
    client = httpx.Client(base_url=site.base_url, timeout=30)
    login = ok(client.post("/v1/sessions", json={"email": email, "password": password}), 201)
    client.headers["X-CSRF-Token"] = login["csrf_token"]
    return client, ok(client.get("/v1/me"))


def new_member(site: Site, owner_email: str, role: str) -> tuple[str, str]:
    """A person invited by `owner_email`'s organization in `role` who accepted: (email, password)."""
    owner, me = session_client(site, owner_email, site.demo_password)
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    try:
        ok(owner.post(f"/v1/organizations/{me['organization_id']}/invitations", json={"email": email, "role": role}),
           201)
    finally:
        owner.close()
    outbox = subprocess.run([sys.executable, "-m", "marketplace.cli", "mail"], cwd=site.directory,
                            env=newcomer_env(), capture_output=True, text=True, timeout=120, check=True).stdout
    letter = outbox[outbox.index(email):]
    found = TOKEN.search(letter)
    assert found, outbox[-2000:]
    password = "panel-" + uuid.uuid4().hex
    ok(httpx.post(site.url("/v1/invitations/accept"),
                  json={"token": found.group(1), "name": f"Viewer {role}", "password": password}), 201)
    return email, password


def _pay_a_usd_batch(site: Site) -> None:
    """The operator plans, approves and waits out a USD batch: every payee with an available balance
    (the demo's first start leaves the demo owners some) is paid."""
    with httpx.Client(base_url=site.base_url, headers={"Authorization": f"Bearer {site.operator_key}"},
                      timeout=30) as operator:
        waiting = ok(operator.get("/v1/payout-batches", params={"status": "awaiting_approval", "currency": "USD"}))
        for batch in waiting["items"]:  # left by another test: this one plans its own
            ok(operator.post(f"/v1/payout-batches/{batch['id']}/cancel"))
        batch = ok(operator.post("/v1/payout-batches", json={"currency": "USD"}), 201)
        ok(operator.post(f"/v1/payout-batches/{batch['id']}/approve"))
        deadline = time.monotonic() + 60
        while batch["status"] != "completed":
            assert time.monotonic() < deadline, f"the batch is still {batch['status']} after 60 s"
            time.sleep(0.2)
            batch = ok(operator.get(f"/v1/payout-batches/{batch['id']}"))


def newest_payout(site: Site, email: str) -> dict[str, Any]:
    """The newest payout of the demo owner `email`'s organization, in detail (`GET /v1/payouts/{id}`);
    a USD batch is paid first when it has none (the console's batch test may have paid one)."""
    client, _me = session_client(site, email, site.demo_password)
    try:
        found = ok(client.get("/v1/payouts", params={"limit": 1}))["items"]
        if not found:
            _pay_a_usd_batch(site)
            found = ok(client.get("/v1/payouts", params={"limit": 1}))["items"]
        assert found, f"{email} has no payout even after a USD batch was paid"
        return ok(client.get(f"/v1/payouts/{found[0]['id']}"))  # type: ignore[no-any-return]
    finally:
        client.close()


def open_newest_payout(page: Any, site: Site, email: str, face: str) -> dict[str, Any]:
    """As the demo owner `email`, open the newest payout from the face's (`seller`, `portal`)
    payouts list; checks the address, the heading and the nav. Returns the payout (API detail)."""
    payout = newest_payout(site, email)
    short = payout["id"][-8:]
    log_in(page, site, email, site.demo_password)
    page.get_by_role("link", name="Balance & payouts").click()
    page.get_by_role("link", name=f"…{short}").click()
    assert page.url.endswith(f"/{face}/payouts/{payout['id']}")
    assert f"Payout …{short}" in page.get_by_role("heading", level=1).inner_text()
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Balance & payouts").get_attribute("aria-current") == "page"
    return payout
