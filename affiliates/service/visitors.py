"""Who follows a referral link, as far as counting clicks goes: a known bot or prefetch, and
otherwise which visitor it is (never a raw client address).

* Bots: the `crawlerdetect` package's maintained patterns (search engines, link previewers such
  as Slack's or WhatsApp's, HTTP libraries and command-line clients such as curl and
  python-requests, headless browsers), plus a request with no User-Agent at all, plus browser
  prefetches and previews announced by header (`Sec-Purpose`/`Purpose: prefetch`, `X-Purpose`,
  `X-Moz`): none of these is a person choosing to visit.
* A visitor is known by two keys, either of which makes a repeat visit a repeat: the visitor
  cookie (`mk_vid`, random, set on the first visit), and a keyed hash (HMAC-SHA256 with a key
  derived from the platform's signing secret) of the client address and User-Agent, for a
  visitor that drops cookies. Only the hashes reach the counter store, with a TTL.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from crawlerdetect import CrawlerDetect

VISITOR_COOKIE = "mk_vid"
VISITOR_COOKIE_MAX_AGE_SECONDS = 366 * 24 * 3600
_COOKIE_SHAPE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
# Header -> values (lower case) that announce a prefetch or preview rather than a visit.
PREFETCH_HEADERS: dict[str, tuple[str, ...]] = {
    "sec-purpose": ("prefetch", "prerender"),  # Chromium speculation rules, Firefox
    "purpose": ("prefetch", "preview"),  # older Chromium, Safari
    "x-purpose": ("prefetch", "preview"),  # Safari top sites, some link previewers
    "x-moz": ("prefetch",),  # older Firefox
}
_detector = CrawlerDetect()  # its compiled patterns are shared; results cached per user agent


def is_automated(user_agent: str | None, headers: Mapping[str, str]) -> bool:
    """A known bot, crawler, link previewer or HTTP library, no User-Agent at all, or a prefetch."""
    agent = (user_agent or "").strip()
    if not agent:
        return True
    for name, markers in PREFETCH_HEADERS.items():
        value = headers.get(name)
        if value and any(marker in value.lower() for marker in markers):
            return True
    return bool(_detector.is_crawler(agent))


@lru_cache(maxsize=8)
def _hash_key(secret: str) -> bytes:
    """A key of its own for visitor hashes (derived, so the signing secret itself is never the key)."""
    return hmac.new(secret.encode(), b"referral-visitor-v1", hashlib.sha256).digest()


def _keyed_hash(secret: str, *parts: str) -> str:
    return hmac.new(_hash_key(secret), "\n".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Visitor:
    automated: bool
    keys: tuple[str, ...]  # hashed identities: cookie (when sent) and address + user agent
    new_cookie: str | None  # a visitor cookie to set (the request sent no valid one)


def identify(*, secret: str, client: str, user_agent: str | None, cookie: str | None,
             headers: Mapping[str, str]) -> Visitor:
    """The visitor of one request to `GET /r/{code}`."""
    if is_automated(user_agent, headers):
        return Visitor(automated=True, keys=(), new_cookie=None)
    fingerprint = "f" + _keyed_hash(secret, client, user_agent or "")
    if cookie is not None and _COOKIE_SHAPE.match(cookie):
        return Visitor(automated=False, keys=("c" + _keyed_hash(secret, cookie), fingerprint), new_cookie=None)
    fresh = secrets.token_urlsafe(18)
    return Visitor(automated=False, keys=("c" + _keyed_hash(secret, fresh), fingerprint), new_cookie=fresh)
