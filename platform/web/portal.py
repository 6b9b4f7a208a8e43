"""The portal pages (/portal): see web/__init__.py for how pages work."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from web.pages import page_viewer, render

router = APIRouter(include_in_schema=False)


@router.get("/portal", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    _api, viewer = await page_viewer(request, "affiliate")
    return render(request, "portal/home.html", viewer=viewer)
