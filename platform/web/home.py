"""`GET /` and logging in and out of the pages (the API's `POST /v1/sessions` underneath)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from kernel.sessions import COOKIE
from web.api import Api
from web.pages import (
    CSRF_COOKIE,
    FORM_FIELD,
    HOME_OF_KIND,
    LoginRequired,
    PageProblem,
    api_error,
    check_form_token,
    form_token,
    page_viewer,
    redirect,
    render,
    secure_cookies,
    viewer_from,
    with_form_cookie,
    writing_api,
)

router = APIRouter(include_in_schema=False)


def _safe_next(value: Any) -> str | None:
    """Only a path of this site: never `//evil.example` or `https://...` (an open redirect)."""
    text = str(value or "")
    return text if text.startswith("/") and not text.startswith("//") and "\\" not in text else None


async def _optional_viewer(request: Request) -> Any:
    try:
        return (await page_viewer(request))[1]
    except (LoginRequired, PageProblem):
        return None


async def landing(request: Request) -> HTMLResponse:
    """`GET /` for a browser (marketplace.system_api sends it here): the storefronts, logging in to
    a console, panel or portal, the API docs."""
    viewer = await _optional_viewer(request)
    storefronts = await Api(request).get("/v1/storefront-directory", limit=50)
    items = storefronts.body.get("items", []) if storefronts.ok and isinstance(storefronts.body, dict) else []
    return render(request, "landing.html", {"storefronts": items}, viewer=viewer)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> Response:
    token = form_token(request)
    page = render(request, "login.html", {"next": _safe_next(next) or "", "form_token": token, "email": ""})
    return with_form_cookie(page, token, request)


@router.post("/login", response_class=HTMLResponse)
async def log_in(request: Request) -> Response:
    form = await request.form()
    email, next_path = str(form.get("email") or "").strip(), _safe_next(form.get("next"))
    token = form_token(request)

    def again(message: str, status_code: int) -> Response:
        page = render(request, "login.html", {"error": message, "email": email, "next": next_path or "",
                                              "form_token": token}, status_code=status_code)
        return with_form_cookie(page, token, request)

    if not check_form_token(request, form):
        return again("The form expired: please log in again.", 400)
    body: dict[str, Any] = {"email": email, "password": str(form.get("password") or "")}
    if form.get("totp_code"):
        body["totp_code"] = str(form.get("totp_code"))
    if form.get("organization_id"):
        body["organization_id"] = str(form.get("organization_id"))
    answer = await Api(request).post("/v1/sessions", body)
    if not answer.ok:
        problem = answer.problem
        message = problem.message if problem and problem.status != 422 else "Enter your email and password."
        return again(message, problem.status if problem else 400)
    # The browser takes the API's session cookie; the CSRF token goes in our own cookie, read by
    # the server to put it in forms (never by scripts: HttpOnly).
    kind = str(answer.body.get("organization_kind") or "")
    response = RedirectResponse(next_path or HOME_OF_KIND.get(kind, "/"), status_code=303)
    for header in answer.headers.get_list("set-cookie"):
        response.headers.append("set-cookie", header)
    # Lax and as long-lived as the session cookie: a logged-in visit from a link in an email
    # still renders forms that carry the token.
    runtime = request.app.state.runtime
    response.set_cookie(CSRF_COOKIE, str(answer.body["csrf_token"]), httponly=True, samesite="lax",
                        secure=secure_cookies(request), max_age=runtime.settings.session_ttl_hours * 3600, path="/")
    return response


@router.post("/logout")
async def log_out(request: Request) -> Response:
    form = await request.form()
    if not request.cookies.get(COOKIE):  # no session sent (none, or a post from another site): nothing to end
        return redirect("/login")
    ended = await writing_api(request, form).delete("/v1/sessions/current")
    if not ended.ok and ended.status != 401:  # refused (no CSRF token): the session lives on, say so
        raise api_error(ended)
    response = redirect("/login", "You are logged out.")
    response.delete_cookie(COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request) -> Response:
    """Who you are, the organizations you belong to (log in to another), your open sessions."""
    api, viewer = await page_viewer(request)
    open_sessions = await api.get("/v1/sessions")
    me = await api.get("/v1/me")
    return render(request, "account.html", {
        "sessions": open_sessions.body if open_sessions.ok else [],
        "memberships": viewer_from(me.body).memberships if me.ok else [],
        "form_field": FORM_FIELD,
    }, viewer=viewer)
