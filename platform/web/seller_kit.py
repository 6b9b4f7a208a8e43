"""What the seller panel and the affiliate portal share (a page hides what its viewer may not do
with `viewer.can(operation)`, web.pages): a write from a form answered with a redirect, every
page of a cursor list, amounts typed as decimals turned into minor units, and the pages both
faces have: the team (members, roles, invitations) and the payouts (balance, payouts, the detail
of one)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from kernel.permissions import ROLES
from web.api import Answer, Api, Problem, seg
from web.pages import (
    THREE_DECIMAL,
    ZERO_DECIMAL,
    PageProblem,
    api_error,
    page_viewer,
    redirect,
    render,
    writing_api,
)


def refuse(status: int, title: str, detail: str) -> PageProblem:
    """A form the page itself refuses before asking the API (shown as the error page)."""
    return PageProblem(Problem(status, title, detail))


def exponent(currency: str) -> int:
    code = currency.upper()
    return 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2


AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,3})?$")


def to_minor(text: str, currency: str) -> int | None:
    """`"19.90"` in USD as 1990, through Decimal (never a float); None when it is not an amount
    with at most the currency's decimals."""
    cleaned = text.strip().replace(",", "")
    if not AMOUNT.match(cleaned):
        return None
    try:
        value = Decimal(cleaned) * (10 ** exponent(currency))
    except InvalidOperation:
        return None
    return int(value) if value == value.to_integral_value() else None


def from_minor(amount: int, currency: str) -> str:
    """1990 in USD as `"19.90"` (the value an amount input shows)."""
    places = exponent(currency)
    if places == 0:
        return str(amount)
    major, minor = divmod(abs(amount), 10**places)
    return f"{'-' if amount < 0 else ''}{major}.{minor:0{places}d}"


async def send(request: Request, method: str, path: str, body: Any, *, done: str, message: str,
               form: Mapping[str, Any] | None = None) -> RedirectResponse:
    """One write from a logged-in form: the API call (with the form's CSRF token), then a 303 to
    the page that shows the result; the API's refusal is shown as the error page."""
    form = form if form is not None else await request.form()
    answer = await writing_api(request, form).call(method, path, json=body)
    if not answer.ok:
        raise api_error(answer)
    return redirect(done, message)


async def read(api: Api, path: str, **params: Any) -> Any:
    """A read the page cannot do without (its refusal is the page's error)."""
    answer = await api.get(path, **params)
    if not answer.ok:
        raise api_error(answer)
    return answer.body


async def read_or(api: Api, path: str, fallback: Any, **params: Any) -> Any:
    """A read the page shows only when the viewer may make it (a role without the permission
    sees the rest of the page)."""
    answer: Answer = await api.get(path, **params)
    return answer.body if answer.ok else fallback


async def every(api: Api, path: str, pages: int = 20, **params: Any) -> list[dict[str, Any]]:
    """Every item of a cursor list (up to `pages` pages of 200)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(pages):
        body = await read(api, path, limit=200, cursor=cursor, **params)
        items.extend(body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            break
    return items


# --- team and payouts: the same pages on both faces ----------------------------------------------------------


def team_router(face: str, kind: str) -> APIRouter:
    """/{face}/team: members with their roles, invitations; managers invite by email, change a
    role and remove a member (the people API: /v1/organizations/{id}/...)."""
    router = APIRouter(include_in_schema=False)
    base = f"/{face}/team"
    members_path = "/v1/organizations/{organization_id}/members"

    @router.get(base, response_class=HTMLResponse)
    async def team(request: Request) -> HTMLResponse:
        api, viewer = await page_viewer(request, kind)
        org = seg(viewer.organization_id)
        members = await read(api, f"/v1/organizations/{org}/members")
        manages = viewer.can("POST /v1/organizations/{organization_id}/invitations")
        invitations = await read_or(api, f"/v1/organizations/{org}/invitations", []) if manages else []
        pending = [i for i in invitations if not i.get("accepted_at") and not i.get("revoked_at")]
        return render(request, f"{face}/team.html", {
            "members": members, "invitations": pending, "team_base": base, "roles": ROLES[kind], "manages": manages,
            "can_patch": viewer.can("PATCH " + members_path + "/{person_id}"),
        }, viewer=viewer)

    @router.post(base + "/invite")
    async def invite(request: Request) -> RedirectResponse:
        _api, viewer = await page_viewer(request, kind)
        form = await request.form()
        email = str(form.get("email") or "").strip()
        return await send(request, "POST", f"/v1/organizations/{seg(viewer.organization_id)}/invitations",
                          {"email": email, "role": str(form.get("role") or "")}, form=form, done=base,
                          message=f"Invitation sent to {email}")

    @router.post(base + "/{person_id}/role")
    async def change_role(request: Request, person_id: str) -> RedirectResponse:
        _api, viewer = await page_viewer(request, kind)
        form = await request.form()
        role = str(form.get("role") or "")
        return await send(request, "PATCH", f"/v1/organizations/{seg(viewer.organization_id)}/members/{seg(person_id)}",
                          {"role": role}, form=form, done=base, message=f"Role changed to {role}")

    @router.post(base + "/{person_id}/remove")
    async def remove(request: Request, person_id: str) -> RedirectResponse:
        _api, viewer = await page_viewer(request, kind)
        path = f"/v1/organizations/{seg(viewer.organization_id)}/members/{seg(person_id)}"
        return await send(request, "DELETE", path, None, done=base, message="Member removed")

    return router


def payouts_router(face: str, kind: str) -> APIRouter:
    """/{face}/payouts: the balance and the payouts page by page; /{face}/payouts/{id}: one payout
    and what it covers (a seller's sales, an affiliate's commissions: `{face}/payout.html`)."""
    router = APIRouter(include_in_schema=False)
    base = f"/{face}/payouts"

    @router.get(base, response_class=HTMLResponse)
    async def payouts(request: Request, cursor: str | None = None) -> HTMLResponse:
        api, viewer = await page_viewer(request, kind)
        balances = await read(api, "/v1/balances")
        page = await read(api, "/v1/payouts", cursor=cursor, limit=50)
        return render(request, f"{face}/payouts.html", {"balances": balances["balances"], "page": page}, viewer=viewer)

    @router.get(base + "/{payout_id}", response_class=HTMLResponse)
    async def payout(request: Request, payout_id: str) -> HTMLResponse:
        api, viewer = await page_viewer(request, kind)
        item = await read(api, f"/v1/payouts/{seg(payout_id)}")
        return render(request, f"{face}/payout.html", {"payout": item}, viewer=viewer)

    return router
