"""The storefront buyers order from (/s/{slug}): see web/__init__.py for how pages work."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from web.api import Api, seg
from web.pages import api_error, render

router = APIRouter(include_in_schema=False)


@router.get("/s/{slug}", response_class=HTMLResponse)
async def listing(request: Request, slug: str) -> HTMLResponse:
    api = Api(request)
    storefront = await api.get(f"/v1/storefronts/{seg(slug)}")
    if not storefront.ok:
        raise api_error(storefront)
    products = await api.get(f"/v1/storefronts/{seg(slug)}/products")
    if not products.ok:
        raise api_error(products)
    return render(request, "storefront/listing.html", {"storefront": storefront.body, "products": products.body})
