"""The console pages (/console): see web/__init__.py for how pages work."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from web.pages import page_viewer, render

router = APIRouter(include_in_schema=False)


@router.get("/console", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    _api, viewer = await page_viewer(request, "operator")
    return render(request, "console/home.html", viewer=viewer)
