"""What every page shares: the templates and their filters, who is looking (`Viewer`, read from
`GET /v1/me`), the form tokens that keep other sites from submitting our forms, and the answers a
page gives (a rendered template, a redirect after a write, the API's problem shown to the user).

CSRF on pages: a logged-in form carries the session's CSRF token (kept at login in the `mk_csrf`
cookie, HttpOnly, SameSite=Strict) as a hidden field; the page handler forwards the *field* to
the API as `X-CSRF-Token`, and the API compares it with the session's. Anonymous forms (login,
storefront checkout) use a double-submit token: a random `mk_form` cookie that the form must echo.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from kernel.permissions import OPERATION_PERMISSIONS
from web.api import Answer, Api, Problem

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

CSRF_COOKIE = "mk_csrf"
FORM_COOKIE = "mk_form"
FORM_FIELD = "form_token"
CSRF_FIELD = "csrf_token"
FLASH_COOKIE = "mk_flash"

# Where each kind of organization lands after logging in.
HOME_OF_KIND = {"operator": "/console", "seller": "/seller", "affiliate": "/portal"}
FACE_NAMES = {"operator": "Operator console", "seller": "Seller panel", "affiliate": "Affiliate portal"}

# Currencies with no minor unit (ISO 4217 exponent 0) or three; every other has two.
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
                          "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def secure_cookies(request: Request) -> bool:
    """The pages' cookies are Secure where the API's session cookie is (production), or whenever
    the request itself came over https."""
    runtime = getattr(request.app.state, "runtime", None)
    production = runtime is not None and runtime.settings.environment == "production"
    return production or request.url.scheme == "https"


# Every page: never stored by a cache (they carry personal data and the form's CSRF token) and
# never framed by another site (one-click forms: approve, mark paid, refund).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; script-src 'self'; object-src 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
}


def money(value: Any, currency: str | None = None) -> str:
    """`{"amount": 12345, "currency": "USD"}` (or an amount and a currency) as `USD 123.45`:
    formatted from the integer, never through a float."""
    if isinstance(value, Mapping):
        amount, currency = int(value.get("amount", 0)), str(value.get("currency") or currency or "")
    elif value is None:
        return "-"
    else:
        amount = int(value)
    code = (currency or "").upper()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    sign, digits = ("-" if amount < 0 else ""), abs(amount)
    if exponent == 0:
        text = f"{digits:,}"
    else:
        major, minor = divmod(digits, 10**exponent)
        text = f"{major:,}.{minor:0{exponent}d}"
    return f"{sign}{code} {text}".strip()


def when(value: Any) -> str:
    """An API timestamp as `2026-12-04 20:31 UTC`."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def short_id(value: Any) -> str:
    text = str(value or "")
    return text[-8:] if len(text) > 8 else text


templates.env.filters["money"] = money
templates.env.filters["when"] = when
templates.env.filters["short_id"] = short_id
templates.env.globals["FACE_NAMES"] = FACE_NAMES


@dataclass(frozen=True, slots=True)
class Viewer:
    """The logged-in person and the organization their session acts for (`GET /v1/me`)."""

    kind: str  # operator | seller | affiliate
    organization_id: str
    organization_name: str
    role: str
    permissions: frozenset[str]
    person_name: str
    person_email: str
    memberships: list[dict[str, Any]]

    def can(self, action: str) -> bool:
        """`viewer.can("POST /v1/orders/{order_id}/mark-paid")` (an API operation, looked up in the
        API's own table, kernel.permissions) or `viewer.can("orders.refund")` (a permission, as
        `GET /v1/me` lists them). A page hides what its viewer may not do; the API refuses it
        anyway. An operation the table does not know: no."""
        needed = OPERATION_PERMISSIONS.get(action) if " /" in action else action
        return needed is not None and (needed in self.permissions or "*" in self.permissions)

    @property
    def home(self) -> str:
        return HOME_OF_KIND.get(self.kind, "/")


def viewer_from(me: Mapping[str, Any]) -> Viewer:
    person = me.get("person") or {}
    return Viewer(
        kind=str(me["organization_kind"]), organization_id=str(me["organization_id"]),
        organization_name=str(me.get("organization_name") or ""), role=str(me["role"]),
        permissions=frozenset(me.get("permissions") or ()), person_name=str(person.get("name") or ""),
        person_email=str(person.get("email") or ""), memberships=list(person.get("memberships") or []),
    )


class LoginRequired(Exception):
    """Raised by a page that needs a session; answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageProblem(Exception):
    """A page that cannot be shown: rendered as the error page with the problem's status."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


async def page_viewer(request: Request, kind: str | None = None) -> tuple[Api, Viewer]:
    """The API as the logged-in browser, and who that is; a page for one kind of organization
    (`kind`) refuses the others. No session: LoginRequired."""
    api = Api(request)
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    back = back if request.method in ("GET", "HEAD") else ""  # a form's POST path is no page to return to
    if not request.cookies.get("mk_session"):
        raise LoginRequired(back)
    me = await api.get("/v1/me")
    if me.status == 401:
        raise LoginRequired(back)
    if not me.ok:
        raise api_error(me)
    viewer = viewer_from(me.body)
    if kind is not None and viewer.kind != kind:
        raise PageProblem(Problem(403, "This page is for another kind of organization",
                                  f"you are logged in for a {viewer.kind}; this page is for a {kind}: "
                                  f"go to {viewer.home} or log in for another organization"))
    return api, viewer


def writing_api(request: Request, form: Mapping[str, Any]) -> Api:
    """The API for a write from a logged-in form: the form's CSRF field goes along as the header."""
    return Api(request, csrf_token=str(form.get(CSRF_FIELD) or ""))


def api_error(answer: Answer) -> PageProblem:
    """An API refusal turned into the page's error (rendered by `web.install_web`'s handler)."""
    return PageProblem(answer.problem or Problem(502, "Unexpected answer", f"the API answered {answer.status}"))


def render(request: Request, template: str, context: Mapping[str, Any] | None = None, *,
           viewer: Viewer | None = None, status_code: int = 200) -> HTMLResponse:
    """A page: the template with the viewer, its CSRF token for forms, and a one-time message."""
    raw_flash = request.cookies.get(FLASH_COOKIE)
    flash = unquote(raw_flash) if raw_flash else None
    values: dict[str, Any] = {
        "request": request, "viewer": viewer, "csrf_token": request.cookies.get(CSRF_COOKIE, ""),
        "flash": flash, **(context or {}),
    }
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    for name, value in PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    if raw_flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def redirect(url: str, message: str | None = None) -> RedirectResponse:
    """After a write: 303 to the page that shows the result (a reload does not repeat the write),
    with a one-time message shown there."""
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(FLASH_COOKIE, quote(message[:300]), max_age=60, httponly=True, samesite="lax",
                            path="/")
    return response


def form_token(request: Request) -> str:
    """The anonymous form's token: the browser's `mk_form` cookie, or a new one (set by
    `with_form_cookie` on the response)."""
    return request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)


def with_form_cookie(response: Response, token: str, request: Request) -> Response:
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request), path="/")
    return response


def check_form_token(request: Request, form: Mapping[str, Any]) -> bool:
    cookie, sent = request.cookies.get(FORM_COOKIE, ""), str(form.get(FORM_FIELD) or "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


def problem_fields(problem: Problem | None) -> dict[str, str]:
    """The API's validation errors by field name (the last part of each error's location), for
    showing each message beside its input."""
    fields: dict[str, str] = {}
    for error in problem.errors if problem else []:
        location = error.get("loc") or error.get("location") or []
        name = ".".join(str(part) for part in location[1:]) if isinstance(location, list) else str(location)
        fields[name or "form"] = str(error.get("msg") or error.get("message") or "invalid")
    return fields
