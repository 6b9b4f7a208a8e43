"""The faces of the platform: server-rendered pages (Jinja2, a little htmx, one stylesheet) for
buyers (the storefront at /s/{slug}), operators (/console), sellers (/seller) and affiliates
(/portal). Pages reach the rules only through the HTTP API (web.api), as their user: the same
permission table, validation and audit as a curl call. Every asset is served from web/static."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from web import console, home, portal, seller, storefront
from web.api import NotAPathSegment, Problem
from web.pages import HERE, LoginRequired, PageProblem, render

STATIC_PATH = "/static/web"


def install_web(app: FastAPI) -> None:
    """Mount the pages and their assets on the API's app (after the API's routers: the pages'
    paths share no prefix with /v1, so the order costs nothing on the hot path)."""
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="web-static")
    for router in (home.router, storefront.router, console.router, seller.router, portal.router):
        app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        target = f"/login?next={quote(exc.next_path, safe='/')}" if exc.next_path else "/login"
        if request.headers.get("HX-Request"):  # an htmx poll: the whole page goes to the login, not the fragment
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(NotAPathSegment)
    async def not_a_page(request: Request, _exc: NotAPathSegment) -> Response:
        return render(request, "error.html", {"problem": Problem(404, "Not found", "there is no such page")},
                      status_code=404)

    @app.exception_handler(PageProblem)
    async def error_page(request: Request, exc: PageProblem) -> Response:
        return render(request, "error.html", {"problem": exc.problem}, status_code=exc.problem.status)
