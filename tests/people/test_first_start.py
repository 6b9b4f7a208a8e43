"""The first `marketplace serve` makes an operator admin person and says how to log in."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.embedded_server import embedded_server


def test_first_serve_prints_an_operator_admin_the_operator_key_and_demo_owners_who_can_log_in(tmp_path: Path) -> None:
    with embedded_server(tmp_path) as served:
        found = re.search(r"log in at \S+/login as (\S+) with password (\S+) ", served.output())
        assert found, served.output()
        email, password = found.groups()
        with httpx.Client(base_url=served.base_url) as browser:
            login = browser.post("/v1/sessions", json={"email": email, "password": password})
            assert login.status_code == 201, login.text
            me = browser.get("/v1/me").json()
        assert (me["organization_kind"], me["role"], me["key_kind"]) == ("operator", "admin", "personal")
        assert "payout_batches.approve" in me["permissions"]
        key = re.search(r"Operator API key \(shown once\): (\S+)", served.output())  # the key is kept too
        assert key, served.output()
        with httpx.Client(base_url=served.base_url) as server:
            by_key = server.get("/v1/me", headers={"Authorization": f"Bearer {key.group(1)}"}).json()
        assert (by_key["organization_kind"], by_key["key_kind"]) == ("operator", "organization")
        demo = re.search(r"as (\S+) \(a seller\) or (\S+) \(an affiliate\), each with password (\S+)", served.output())
        assert demo, served.output()
        for email, kind in ((demo.group(1), "seller"), (demo.group(2), "affiliate")):
            with httpx.Client(base_url=served.base_url) as browser:
                login = browser.post("/v1/sessions", json={"email": email, "password": demo.group(3)})
                assert login.status_code == 201, login.text
                assert browser.get("/v1/me").json()["role"] == "owner"
                assert login.json()["organization_kind"] == kind
