"""Referral links, clicks and their counters.

`GET /r/{code}` (public) is the hot path. Design:
* A hit is counted as a click only once per visitor per link per window
  (settings.referral_unique_click_window_seconds), and never for a known bot or a prefetch
  (affiliates.service.visitors says who is who). Raw hits are counted apart: per link per day,
  `clicks` (unique human visitors), `hits` (every request) and `bot_hits`.
* Only a counted click writes a row: the click row (token -> link, affiliate, time) is INSERTed
  by the request itself, because a checkout may come a second later and must find the token.
  The visitor's keys are claimed in the store (SET NX, with the window as TTL) holding that
  token, so a repeat visit (same cookie, or same address and user agent) is redirected with the
  same token (still attributable) and writes nothing but counters. A bot is redirected without
  a token and writes nothing but counters.
* The counters are what would contend (every click on a popular link updating one row). With
  Redis configured they are `INCR`ed in Redis (`aff:clicks:` / `aff:hits:` / `aff:bots:` +
  `{link}:{affiliate}:{day}`) and added to `referral_click_daily` in batches by the
  `affiliates.flush_clicks` beat task; without Redis (embedded default, one process) the
  request upserts the counter row itself.
* The token is 192 random bits (URL-safe), stored UNIQUE with the click: unguessable, so a
  buyer cannot claim another affiliate's click, and revocable (delete the row).
The visitor is redirected (302) to the link's destination with `mk_ref=<token>` added to the
query and the same token in a cookie; the last click wins because each click replaces both (a
repeat visit within the window brings back its first click's token, whose attribution window
runs from that first click).
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from affiliates.errors import CodeTaken, LinkNotFound, NotProgramMember
from affiliates.models import Affiliate, AffiliateStatus, Click, ClickDailyCount, ReferralLink
from affiliates.schemas import LinkCreate
from affiliates.service.common import approved_affiliate, page
from affiliates.service.programs import is_approved_member
from affiliates.service.storefronts import owned_by_id as owned_storefront
from affiliates.service.visitors import Visitor
from catalog.errors import ProductNotFound
from catalog.models import Product
from kernel.auth import Principal
from kernel.cache import Store
from kernel.clock import clock
from kernel.db import new_id
from kernel.pgsql import driver_execute, is_postgres, precompile
from kernel.settings import Settings

TOKEN_PARAM = "mk_ref"
COOKIE_NAME = "mk_ref"
COUNTER_PREFIX = "aff:clicks:"  # counted clicks (unique human visitors)
HITS_PREFIX = "aff:hits:"  # every request on a live link of an approved affiliate
BOT_HITS_PREFIX = "aff:bots:"  # of those, the ones from bots and prefetches
SEEN_PREFIX = "aff:seen:"  # visitor key -> the token of its counted click, for the window
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
        destination = f"{base}/s/{storefront.slug}/products/{data.product_id}"  # the storefront's pages
    elif storefront is not None:
        destination = f"{base}/s/{storefront.slug}"
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


def record_click(session: Session, store: Store, settings: Settings, code: str, *, visitor: Visitor,
                 referer: str | None, user_agent: str | None) -> Redirect:
    """Count a hit on `code` (a click when it is a new human visitor's) and say where to send
    the visitor. Statements: a counted click on PostgreSQL is one (the link read and the click
    INSERT as one statement, see _CLICK_SQL), elsewhere one SELECT and one INSERT; a repeat
    visit or a bot is one SELECT; plus the counter upsert when no Redis is configured."""
    if visitor.automated:
        link = _live_link(session, code)
        if link.status != AffiliateStatus.APPROVED:
            return Redirect(link.destination, None)
        _count(session, store, settings, link.id, link.affiliate_id, hits=1, bot_hits=1)
        return Redirect(link.destination, None)
    token = secrets.token_urlsafe(24)
    ttl = settings.referral_unique_click_window_seconds
    held = store.claim({f"{SEEN_PREFIX}{code}:{key}": token.encode() for key in visitor.keys}, ttl)
    earlier = next((value for value in held.values() if value is not None), None)
    if earlier is not None:
        return _repeat_visit(session, store, settings, code, earlier, [k for k, v in held.items() if v is None])
    try:
        if is_postgres(session):
            found = _insert_click_pg(session, code, token, referer=referer, user_agent=user_agent)
        else:
            found = _insert_click(session, code, token, referer=referer, user_agent=user_agent)
    except Exception:
        store.delete(*held)  # no click row holds this token: it must not stand for the visitor
        raise
    link_id, affiliate_id, destination, clicked = found
    if not clicked:
        store.delete(*held)
        return Redirect(destination, None)
    _count(session, store, settings, link_id, affiliate_id, clicks=1, hits=1)
    return Redirect(with_token(destination, token), token)


def _repeat_visit(session: Session, store: Store, settings: Settings, code: str, earlier: bytes,
                  fresh_keys: list[str]) -> Redirect:
    """A visitor seen on this link within the window: its counted click's token again, no row."""
    link = _live_link(session, code)
    if link.status != AffiliateStatus.APPROVED:
        return Redirect(link.destination, None)
    # e.g. a new cookie of a visitor known by address: from now on it names the same click
    _count(session, store, settings, link.id, link.affiliate_id, hits=1, also_set=dict.fromkeys(fresh_keys, earlier))
    token = earlier.decode()
    return Redirect(with_token(link.destination, token), token)


def _live_link_stmt() -> Any:
    return (
        select(ReferralLink.id, ReferralLink.affiliate_id, ReferralLink.storefront_id, ReferralLink.destination,
               Affiliate.status)
        .join(Affiliate, Affiliate.id == ReferralLink.affiliate_id)
        .where(ReferralLink.code == bindparam("code"), ReferralLink.active.is_(True))
    )


_LIVE_LINK_PG = precompile(_live_link_stmt())  # the repeat visit's one statement, sent as text


def destination(session: Session, code: str) -> str:
    """Where the active link `code` leads (404 otherwise): the redirect when the store that
    counts visitors is down, so a published link keeps working (uncounted, unattributed)."""
    return str(_live_link(session, code).destination)


def _live_link(session: Session, code: str) -> Any:
    """The active link `code` with its affiliate's status (one SELECT); 404 otherwise."""
    if is_postgres(session):
        row = _LIVE_LINK_PG.run(session, {"code": code}).first()
    else:
        row = session.execute(_live_link_stmt(), {"code": code}).first()
    if row is None:
        raise LinkNotFound(f"no referral link {code!r}")
    return row


def _count(session: Session, store: Store, settings: Settings, link_id: uuid.UUID, affiliate_id: uuid.UUID,
           *, clicks: int = 0, hits: int = 0, bot_hits: int = 0, also_set: dict[str, bytes] | None = None) -> None:
    """Count the hit (Redis counters, or the daily row without Redis); `also_set`: store keys to
    write in the same round trip (with the unique-click window as TTL)."""
    now = clock.now()
    if settings.redis_url:
        amounts = {counter_key(link_id, affiliate_id, now, prefix): n
                   for prefix, n in ((COUNTER_PREFIX, clicks), (HITS_PREFIX, hits), (BOT_HITS_PREFIX, bot_hits)) if n}
        store.incr_many(amounts, also_set=also_set, ttl_seconds=settings.referral_unique_click_window_seconds)
        return
    if also_set:
        store.incr_many({}, also_set=also_set, ttl_seconds=settings.referral_unique_click_window_seconds)
    add_daily_counts(session, {(link_id, affiliate_id, now.date()): Tally(clicks, hits, bot_hits)})


ClickFound = tuple[uuid.UUID, uuid.UUID, str, bool]  # link, affiliate, destination, click inserted


def _insert_click(session: Session, code: str, token: str, *, referer: str | None,
                  user_agent: str | None) -> ClickFound:
    row = _live_link(session, code)
    if row.status != AffiliateStatus.APPROVED:
        return row.id, row.affiliate_id, row.destination, False
    session.add(Click(
        token=token, link_id=row.id, affiliate_id=row.affiliate_id, storefront_id=row.storefront_id,
        referer=(referer or None) and referer[:500], user_agent=(user_agent or None) and user_agent[:300],
        created_at=clock.now(),
    ))
    session.flush()
    return row.id, row.affiliate_id, row.destination, True


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


def _insert_click_pg(session: Session, code: str, token: str, *, referer: str | None,
                     user_agent: str | None) -> ClickFound:
    row = driver_execute(session, _CLICK_SQL, {
        "code": code, "id": new_id(), "token": token, "referer": (referer or None) and referer[:500],
        "user_agent": (user_agent or None) and user_agent[:300], "now": clock.now(),
        "approved": AffiliateStatus.APPROVED.value,
    }).first()
    if row is None:
        raise LinkNotFound(f"no referral link {code!r}")
    link_id, affiliate_id, destination, clicked = row
    return link_id, affiliate_id, destination, bool(clicked)


@dataclass(slots=True)
class Tally:
    """One link's counts for one UTC day (see ClickDailyCount)."""

    clicks: int = 0
    hits: int = 0
    bot_hits: int = 0


COUNTER_PREFIXES = {COUNTER_PREFIX: "clicks", HITS_PREFIX: "hits", BOT_HITS_PREFIX: "bot_hits"}


def counter_key(link_id: uuid.UUID, affiliate_id: uuid.UUID, at: datetime, prefix: str = COUNTER_PREFIX) -> str:
    return f"{prefix}{link_id}:{affiliate_id}:{at.date().isoformat()}"


def parse_counters(counters: dict[str, int]) -> dict[tuple[uuid.UUID, uuid.UUID, date], Tally]:
    """Redis counter keys (any of COUNTER_PREFIXES) -> {(link, affiliate, day): Tally}; malformed
    keys are skipped."""
    totals: dict[tuple[uuid.UUID, uuid.UUID, date], Tally] = defaultdict(Tally)
    for key, value in counters.items():
        prefix = next((p for p in COUNTER_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            continue
        try:
            link, affiliate, day = key[len(prefix):].split(":")
            slot = (uuid.UUID(link), uuid.UUID(affiliate), date.fromisoformat(day))
        except ValueError:
            continue
        tally = totals[slot]
        setattr(tally, COUNTER_PREFIXES[prefix], getattr(tally, COUNTER_PREFIXES[prefix]) + int(value))
    return dict(totals)


def add_daily_counts(session: Session, counts: dict[tuple[uuid.UUID, uuid.UUID, date], Tally]) -> int:
    """Add to the daily counters: one multi-row upsert (`clicks = clicks + n`, and so for hits and
    bot_hits), rows in key order so two concurrent flushes lock them in the same order. Returns
    the counted clicks added."""
    if not counts:
        return 0
    rows = [
        {"link_id": link, "affiliate_id": affiliate, "day": day, "clicks": t.clicks, "hits": t.hits,
         "bot_hits": t.bot_hits}
        for (link, affiliate, day), t in sorted(counts.items(), key=lambda kv: (str(kv[0][0]), kv[0][2]))
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(ClickDailyCount).values(rows)
    stmt = stmt.on_conflict_do_update(index_elements=["link_id", "day"], set_={
        "clicks": ClickDailyCount.clicks + stmt.excluded.clicks,
        "hits": ClickDailyCount.hits + stmt.excluded.hits,
        "bot_hits": ClickDailyCount.bot_hits + stmt.excluded.bot_hits,
    })
    session.execute(stmt)
    return sum(t.clicks for t in counts.values())


def pop_all_counters(store: Store) -> dict[str, int]:
    """Read and reset every click, hit and bot-hit counter (GETDEL each)."""
    counters: dict[str, int] = {}
    for prefix in COUNTER_PREFIXES:
        counters.update(store.pop_counters(prefix))
    return counters


def restore_counters(store: Store, counters: dict[str, int]) -> None:
    """Put popped counters back (a flush whose transaction failed), so no click is lost."""
    store.incr_many(counters)
