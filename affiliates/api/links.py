"""Referral links, their clicks, and on `buyer_router` the public `/r/{code}` redirect that
records a click."""

from __future__ import annotations

import uuid

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from affiliates.api.common import AffiliateOrOperator, Cursor, Limit, RuntimeDep
from affiliates.api.views import link_out
from affiliates.schemas import DailyClicksOut, LinkCreate, LinkOut
from affiliates.service import links, visitors
from kernel.cache import STORE_OUTAGES
from kernel.db import autocommit_engine, session_scope
from kernel.deps import AffiliatePrincipal, DbSession, PublicRateLimit, StrictQuery, client_address
from kernel.schemas import Page

log = structlog.get_logger(__name__)

router = APIRouter(dependencies=[StrictQuery])
# The redirect opens its own unit of work in the handler, like the storefront's products (the
# note in affiliates.api.storefronts says why).
buyer_router = APIRouter()


@router.post("/v1/referral-links", status_code=201, response_model=LinkOut, tags=["referral links"],
             responses={404: {"description": "The product or storefront the link points at is not found"}})
def create_link(body: LinkCreate, session: DbSession, principal: AffiliatePrincipal, runtime: RuntimeDep) -> LinkOut:
    """Affiliate: a referral link. Share `url`; each visit records a click and redirects to the
    target with an attribution token (`mk_ref` query parameter and cookie)."""
    link = links.create_link(session, principal, runtime.settings, body)
    return link_out(link, runtime.settings.public_base_url, 0)


@router.get("/v1/referral-links", response_model=Page[LinkOut], tags=["referral links"])
def list_links(session: DbSession, principal: AffiliateOrOperator, runtime: RuntimeDep, cursor: Cursor = None,
               limit: Limit = 50) -> Page[LinkOut]:
    """Your referral links with their click totals, oldest first (an operator sees everyone's)."""
    rows, next_cursor = links.list_links(session, principal, cursor=cursor, limit=limit)
    totals = links.click_totals(session, [r.id for r in rows])
    base = runtime.settings.public_base_url
    return Page(items=[link_out(r, base, totals.get(r.id, 0)) for r in rows], next_cursor=next_cursor)


@router.get("/v1/referral-links/{link_id}", response_model=LinkOut, tags=["referral links"])
def read_link(link_id: uuid.UUID, session: DbSession, principal: AffiliateOrOperator, runtime: RuntimeDep) -> LinkOut:
    """One of your referral links with its URL and click total."""
    link = links.owned_link(session, principal, link_id)
    return link_out(link, runtime.settings.public_base_url, links.click_totals(session, [link.id]).get(link.id, 0))


@router.post("/v1/referral-links/{link_id}/deactivate", response_model=LinkOut, tags=["referral links"])
def deactivate_link(link_id: uuid.UUID, session: DbSession, principal: AffiliateOrOperator,
                    runtime: RuntimeDep) -> LinkOut:
    """The link stops redirecting (404); clicks already made keep attributing within their window."""
    link = links.deactivate(session, principal, link_id)
    return link_out(link, runtime.settings.public_base_url, links.click_totals(session, [link.id]).get(link.id, 0))


@router.get("/v1/referral-links/{link_id}/clicks/daily", response_model=list[DailyClicksOut],
            tags=["referral links"])
def link_daily_clicks(link_id: uuid.UUID, session: DbSession, principal: AffiliateOrOperator) -> list[DailyClicksOut]:
    """Clicks per UTC day (flushed counters; with Redis, up to a minute behind)."""
    return [DailyClicksOut(day=row.day.isoformat(), clicks=row.clicks, hits=row.hits, bot_hits=row.bot_hits)
            for row in links.daily_clicks(session, principal, link_id)]


@buyer_router.get("/r/{code}", status_code=302, tags=["referral links"], dependencies=[PublicRateLimit],
            response_class=RedirectResponse, responses={302: {"description": "to the link's target, with mk_ref"}})
def follow_link(code: str, request: Request, runtime: RuntimeDep) -> RedirectResponse:
    """Public: count the visit and redirect to the target with the attribution token as the
    `mk_ref` query parameter and cookie (the last click replaces both). A visitor's first visit
    within the window is a click; a repeat visit gets the same token again; known bots and
    prefetches are redirected without a token and counted as hits only."""
    # On PostgreSQL with Redis counting the clicks, the click is one statement (links.record_click):
    # run it on an autocommit connection, so it is its own transaction (no BEGIN/COMMIT).
    settings = runtime.settings
    user_agent = request.headers.get("user-agent")
    visitor = visitors.identify(
        secret=runtime.visitor_hash_key, client=client_address(request),
        user_agent=user_agent, cookie=request.cookies.get(visitors.VISITOR_COOKIE), headers=request.headers,
    )
    bind = None if settings.is_sqlite or not settings.redis_url else autocommit_engine(runtime.engine)
    try:
        with session_scope(runtime.sessions, bind=bind) as session:
            redirect = links.record_click(session, runtime.store, settings, code, visitor=visitor,
                                          referer=request.headers.get("referer"), user_agent=user_agent)
    except STORE_OUTAGES:
        # Redis down: the visitor still reaches the target (a link printed in a newsletter must not
        # break); the visit is neither counted nor attributed, and nothing of it was written.
        log.warning("referral_click_not_counted", code=code, exc_info=True)
        with session_scope(runtime.sessions) as session:
            return RedirectResponse(links.destination(session, code), status_code=302,
                                    headers={"Cache-Control": "no-store"})
    response = RedirectResponse(redirect.location, status_code=302)
    response.headers["Cache-Control"] = "no-store"  # it may set cookies: no cache may replay it
    secure = request.url.scheme == "https"
    if redirect.token is not None:
        response.set_cookie(links.COOKIE_NAME, redirect.token, max_age=links.COOKIE_MAX_AGE_SECONDS, httponly=True,
                            samesite="lax", secure=secure)
    if visitor.new_cookie is not None:
        response.set_cookie(visitors.VISITOR_COOKIE, visitor.new_cookie,
                            max_age=visitors.VISITOR_COOKIE_MAX_AGE_SECONDS, httponly=True, samesite="lax",
                            secure=secure)
    return response
