"""What the console's pages share (a page hides what its operator may not do with
`viewer.can(operation)`, web.pages): the write every console form makes (the form's CSRF token
to the API, then 303 to the page that shows the result, or the API's problem as the error page)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse

from web.api import Answer, Api
from web.pages import Viewer, api_error, page_viewer, redirect, writing_api

OPERATOR = "operator"


async def operator_page(request: Request) -> tuple[Api, Viewer]:
    return await page_viewer(request, OPERATOR)


def items_of(answer: Answer) -> list[dict[str, Any]]:
    """A cursor page's items (or a plain list), empty when the API refused."""
    if not answer.ok:
        return []
    body = answer.body
    return list(body.get("items", []) if isinstance(body, dict) else body or [])


def next_cursor(answer: Answer) -> str | None:
    return answer.body.get("next_cursor") if answer.ok and isinstance(answer.body, dict) else None


async def form_of(request: Request) -> dict[str, str]:
    return {key: str(value) for key, value in (await request.form()).items()}


async def write(
    request: Request, method: str, path: str, body: Any, then: str, message: str,
    form: dict[str, str] | None = None, headers: dict[str, str] | None = None,
) -> RedirectResponse:
    """One write through the API as the logged-in operator; PRG on success."""
    await operator_page(request)  # a session of an operator, or the login page / 403
    form = form if form is not None else await form_of(request)
    api = writing_api(request, form)
    answer = await api.call(method, path, json=body if body is not None else {}, headers=headers)
    if not answer.ok:
        raise api_error(answer)
    return redirect(then, message)
