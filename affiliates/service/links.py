"""Referral links, clicks and their counters.

`GET /r/{code}` (public) is the hot path. Design:
* The click row (token -> link, affiliate, time) is INSERTed by the request itself: a checkout
  may come a second later and must find the token, so it cannot wait for a batch.
* The per-link per-day counters are what would contend (every click on a popular link updating
  one row). With Redis configured they are `INCR`ed in Redis (`aff:clicks:{link}:{affiliate}:{day}`)
  and added to `referral_click_daily` in batches by the `affiliates.flush_clicks` beat task;
  without Redis (embedded default, one process) the request upserts the counter row itself.
* The token is 192 random bits (URL-safe), stored UNIQUE with the click: unguessable, so a
  buyer cannot claim another affiliate's click, and revocable (delete the row).
The visitor is redirected (302) to the link's destination with `mk_ref=<token>` added to the
query and the same token in a cookie; the last click wins because each click replaces both.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from affiliates.errors import CodeTaken, LinkNotFound, NotProgramMember
from affiliates.models import Affiliate, AffiliateStatus, Click, ClickDailyCount, ReferralLink
from affiliates.schemas import LinkCreate
from affiliates.service.common import approved_affiliate, page
from affiliates.service.programs import is_approved_member
from affiliates.service.storefronts import owned_by_id as owned_storefront
from catalog.errors import ProductNotFound
from catalog.models import Product
from kernel.auth import Principal
from kernel.cache import Store
from kernel.clock import clock
from kernel.db import new_id
from kernel.pgsql import driver_execute, is_postgres
from kernel.settings import Settings

TOKEN_PARAM = "mk_ref"
COOKIE_NAME = "mk_ref"
COUNTER_PREFIX = "aff:clicks:"
# The cookie outlives the longest attribution window a program may set; validity is decided
# at checkout against the program's own window, never by the cookie's age.
COOKIE_MAX_AGE_SECONDS = 366 * 24 * 3600


def _code() -> str:
    return secrets.token_hex(5)


def create_link(session: Session, principal: Principal, settings: Settings, data: LinkCreate) -> ReferralLink:
    assert principal.subject_id is not None
    affiliate_id = principal.subject_id
    approved_affiliate(session, affiliate_id)
    base = settings.public_base_url.rstrip("/")
    storefront = owned_storefront(session, principal, data.storefront_id) if data.storefront_id else None
    if data.product_id is not None:
        seller_id = session.scalar(select(Product.seller_id).where(Product.id == data.product_id))
        if seller_id is None:
            raise ProductNotFound(f"no product {data.product_id}")
        if not is_approved_member(session, affiliate_id, seller_id):
            raise NotProgramMember(f"you are not an approved member of the program of seller {seller_id}",
                                   seller_id=str(seller_id))
    if data.target_url is not None:
        destination = str(data.target_url)
    elif storefront is not None and data.product_id is not None:
        destination = f"{base}/v1/storefronts/{storefront.slug}/products/{data.product_id}"
    elif storefront is not None:
        destination = f"{base}/v1/storefronts/{storefront.slug}"
    else:
        destination = f"{base}/v1/catalog/products/{data.product_id}"
    code = data.code or _code()
    if session.scalar(select(ReferralLink.id).where(ReferralLink.code == code)) is not None:
        raise CodeTaken(f"link code {code!r} is taken")
    link = ReferralLink(
        affiliate_id=affiliate_id, code=code, target_url=str(data.target_url) if data.target_url else None,
        product_id=data.product_id, storefront_id=data.storefront_id, destination=destination,
    )
    session.add(link)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise CodeTaken(f"link code {code!r} is taken") from None
    return link


def owned_link(session: Session, principal: Principal, link_id: uuid.UUID) -> ReferralLink:
    link = session.get(ReferralLink, link_id)
    if link is None or not (principal.is_operator or link.affiliate_id == principal.subject_id):
        raise LinkNotFound(f"no referral link {link_id}")
    return link


def deactivate(session: Session, principal: Principal, link_id: uuid.UUID) -> ReferralLink:
    """A deactivated link answers 404; its clicks keep attributing orders within their window."""
    link = owned_link(session, principal, link_id)
    link.active = False
    session.flush()
    return link


def list_links(session: Session, principal: Principal, *, cursor: str | None,
               limit: int) -> tuple[list[ReferralLink], str | None]:
    stmt = select(ReferralLink)
    if not principal.is_operator:
        stmt = stmt.where(ReferralLink.affiliate_id == principal.subject_id)
    return page(session, stmt, ReferralLink.id, cursor, limit)


def click_totals(session: Session, link_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Flushed clicks per link (one SELECT)."""
    if not link_ids:
        return {}
    rows = session.execute(
        select(ClickDailyCount.link_id, func.sum(ClickDailyCount.clicks))
        .where(ClickDailyCount.link_id.in_(link_ids)).group_by(ClickDailyCount.link_id)
    ).all()
    return {row[0]: int(row[1] or 0) for row in rows}


def daily_clicks(session: Session, principal: Principal, link_id: uuid.UUID) -> list[ClickDailyCount]:
    link = owned_link(session, principal, link_id)
    return list(session.scalars(
        select(ClickDailyCount).where(ClickDailyCount.link_id == link.id).order_by(ClickDailyCount.day)))


def list_clicks(session: Session, principal: Principal, *, link_id: uuid.UUID | None, cursor: str | None,
                limit: int) -> tuple[list[Click], str | None]:
    """The caller's clicks (an operator's: everyone's), oldest first; another affiliate's link is a 404."""
    stmt = select(Click)
    if link_id is not None:
        owned_link(session, principal, link_id)
        stmt = stmt.where(Click.link_id == link_id)
    if not principal.is_operator:
        stmt = stmt.where(Click.affiliate_id == principal.subject_id)
    return page(session, stmt, Click.id, cursor, limit)


# --- the click --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Redirect:
    location: str
    token: str | None  # None: the link's affiliate is not approved, nothing was recorded


def with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != TOKEN_PARAM]
    query.append((TOKEN_PARAM, token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def record_click(session: Session, store: Store, settings: Settings, code: str, *, referer: str | None,
                 user_agent: str | None) -> Redirect:
    """Record a click on `code` and say where to send the visitor. Statements: on PostgreSQL one
    (the link read and the click INSERT as one statement, see _CLICK_SQL); elsewhere one SELECT
    and one INSERT; plus the counter upsert when no Redis is configured."""
    if is_postgres(session):
        return _record_click_pg(session, store, settings, code, referer=referer, user_agent=user_agent)
    row = session.execute(
        select(ReferralLink.id, ReferralLink.affiliate_id, ReferralLink.storefront_id, ReferralLink.destination,
               Affiliate.status)
        .join(Affiliate, Affiliate.id == ReferralLink.affiliate_id)
        .where(ReferralLink.code == code, ReferralLink.active.is_(True))
    ).first()
    if row is None:
        raise LinkNotFound(f"no referral link {code!r}")
    if row.status != AffiliateStatus.APPROVED:
        return Redirect(row.destination, None)
    now = clock.now()
    token = secrets.token_urlsafe(24)
    session.add(Click(
        token=token, link_id=row.id, affiliate_id=row.affiliate_id, storefront_id=row.storefront_id,
        referer=(referer or None) and referer[:500], user_agent=(user_agent or None) and user_agent[:300],
        created_at=now,
    ))
    session.flush()
    if settings.redis_url:
        store.incr(counter_key(row.id, row.affiliate_id, now))
    else:
        add_daily_counts(session, {(row.id, row.affiliate_id, now.date()): 1})
    return Redirect(with_token(row.destination, token), token)


# PostgreSQL: the active link with its affiliate's status, and the click inserted only if that
# affiliate is approved, in one statement (one round trip; the API runs it on an autocommit
# connection, so it is also the whole transaction). `code` is unique: at most one link row.
_CLICK_SQL = f"""
WITH link AS (
    SELECT l.id, l.affiliate_id, l.storefront_id, l.destination, a.status
    FROM {ReferralLink.__tablename__} l JOIN {Affiliate.__tablename__} a ON a.id = l.affiliate_id
    WHERE l.code = %(code)s AND l.active
), ins AS (
    INSERT INTO {Click.__tablename__} (id, token, link_id, affiliate_id, storefront_id, referer, user_agent, created_at)
    SELECT %(id)s, %(token)s, link.id, link.affiliate_id, link.storefront_id, %(referer)s, %(user_agent)s, %(now)s
    FROM link WHERE link.status = %(approved)s
    RETURNING id
)
SELECT link.id, link.affiliate_id, link.destination, EXISTS (SELECT 1 FROM ins) FROM link
"""


def _record_click_pg(session: Session, store: Store, settings: Settings, code: str, *, referer: str | None,
                     user_agent: str | None) -> Redirect:
    now = clock.now()
    token = secrets.token_urlsafe(24)
    row = driver_execute(session, _CLICK_SQL, {
        "code": code, "id": new_id(), "token": token, "referer": (referer or None) and referer[:500],
        "user_agent": (user_agent or None) and user_agent[:300], "now": now,
        "approved": AffiliateStatus.APPROVED.value,
    }).first()
    if row is None:
        raise LinkNotFound(f"no referral link {code!r}")
    link_id, affiliate_id, destination, clicked = row
    if not clicked:
        return Redirect(destination, None)
    if settings.redis_url:
        store.incr(counter_key(link_id, affiliate_id, now))
    else:
        add_daily_counts(session, {(link_id, affiliate_id, now.date()): 1})
    return Redirect(with_token(destination, token), token)


def counter_key(link_id: uuid.UUID, affiliate_id: uuid.UUID, at: datetime) -> str:
    return f"{COUNTER_PREFIX}{link_id}:{affiliate_id}:{at.date().isoformat()}"


def parse_counters(counters: dict[str, int]) -> dict[tuple[uuid.UUID, uuid.UUID, date], int]:
    """Redis counter keys -> {(link, affiliate, day): clicks}; malformed keys are skipped."""
    totals: dict[tuple[uuid.UUID, uuid.UUID, date], int] = defaultdict(int)
    for key, value in counters.items():
        try:
            link, affiliate, day = key[len(COUNTER_PREFIX):].split(":")
            totals[(uuid.UUID(link), uuid.UUID(affiliate), date.fromisoformat(day))] += int(value)
        except ValueError:
            continue
    return dict(totals)


def add_daily_counts(session: Session, counts: dict[tuple[uuid.UUID, uuid.UUID, date], int]) -> int:
    """Add clicks to the daily counters: one multi-row upsert (`clicks = clicks + n`), rows in
    key order so two concurrent flushes lock them in the same order. Returns clicks added."""
    if not counts:
        return 0
    rows = [
        {"link_id": link, "affiliate_id": affiliate, "day": day, "clicks": n}
        for (link, affiliate, day), n in sorted(counts.items(), key=lambda kv: (str(kv[0][0]), kv[0][2]))
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(ClickDailyCount).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["link_id", "day"], set_={"clicks": ClickDailyCount.clicks + stmt.excluded.clicks})
    session.execute(stmt)
    return sum(counts.values())


def restore_counters(store: Store, counters: dict[str, int]) -> None:
    """Put popped counters back (a flush whose transaction failed), so no click is lost."""
    for key, value in counters.items():
        store.incr(key, value)
