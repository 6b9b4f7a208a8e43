"""The pages' common ground in a real browser: the start page, logging in and out, each face
refusing the wrong kind of organization, everything served by the application itself."""

from __future__ import annotations

from typing import Any

import httpx

from tests.web.conftest import Site, accessible, log_in, shot


def test_the_start_page_leads_to_the_storefronts_the_faces_and_the_docs(page: Any, site: Site) -> None:
    page.goto(site.url("/"))
    assert page.get_by_role("link", name="Operator console").is_visible()
    assert page.get_by_role("link", name="API docs").first.is_visible()
    accessible(page)


def test_an_operator_logs_in_lands_on_the_console_and_logs_out(page: Any, site: Site) -> None:
    log_in(page, site, site.operator_email, site.operator_password)
    assert page.url.endswith("/console")
    assert page.get_by_role("button", name="Log out").is_visible()
    accessible(page)
    shot(page, "console-home")
    page.get_by_role("button", name="Log out").click()
    assert "/login" in page.url
    page.goto(site.url("/console"))
    assert "/login?next=/console" in page.url  # the session ended: the console asks to log in again


def test_a_wrong_password_is_refused_on_the_page_with_the_apis_reason(page: Any, site: Site) -> None:
    log_in(page, site, site.operator_email, "not-the-password")
    assert "/login" in page.url
    assert "wrong email or password" in page.get_by_role("alert").inner_text()
    accessible(page)


def test_a_seller_is_refused_the_operator_console_and_sent_to_its_panel(page: Any, site: Site) -> None:
    log_in(page, site, site.seller_email, site.demo_password)
    assert page.url.endswith("/seller")
    response = page.goto(site.url("/console"))
    assert response is not None and response.status == 403
    assert "/seller" in page.get_by_role("main").inner_text()


def test_every_asset_a_page_loads_comes_from_the_application_itself(page: Any, site: Site) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(site.url("/"))
    log_in(page, site, site.operator_email, site.operator_password)
    page.goto(site.url("/docs"))
    page.wait_for_selector(".swagger-ui .information-container")
    shot(page, "api-docs")
    assert requested and all(url.startswith(site.base_url) for url in requested), requested


def test_the_login_page_never_redirects_to_another_site(site: Site) -> None:
    with httpx.Client(base_url=site.base_url) as client:
        form = client.get("/login")
        token = form.text.split('name="form_token" value="', 1)[1].split('"', 1)[0]
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            answer = client.post("/login", data={"email": site.operator_email, "password": site.operator_password,
                                                 "form_token": token, "next": target})
            assert answer.status_code == 303 and answer.headers["location"] == "/console", target


def test_a_login_form_posted_from_elsewhere_without_its_token_is_refused(site: Site) -> None:
    answer = httpx.post(site.url("/login"), data={"email": site.operator_email, "password": site.operator_password})
    assert answer.status_code == 400 and "mk_session" not in answer.headers.get("set-cookie", "")


def test_pages_are_never_cached_or_framed_and_run_only_their_own_scripts(site: Site) -> None:
    answer = httpx.get(site.url("/login"))
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "script-src 'self'" in answer.headers["content-security-policy"]
