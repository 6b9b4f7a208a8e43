"""The pages' one door to the rules: every read and write a page makes is a call of the public
HTTP API, in process (httpx over ASGI, no socket), carrying the browser's own credentials (its
session cookie, and on writes the CSRF token the page's form sent back). So a page can do exactly
what its user could do with curl: the API checks the permission, validates the input, writes the
audit event and answers with problem details, and the page only renders the answer."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request

from kernel.sessions import COOKIE, CSRF_HEADER

# Cookies the API reads from the browser: the session, and the referral token `GET /r/{code}` set.
FORWARDED_COOKIES = (COOKIE, "mk_ref")


class NotAPathSegment(ValueError):
    """A value from the URL or a form that cannot be one segment of an API path (the pages answer 404)."""


def seg(value: object) -> str:
    """One path segment from user input, quoted. `/`, `.` and `..` are refused, not quoted: the
    in-process transport hands the API the decoded path, where they would change the path called."""
    text = str(value)
    if not text or "/" in text or "\\" in text or text in (".", ".."):
        raise NotAPathSegment(text[:40])
    return quote(text, safe="")


@dataclass(frozen=True, slots=True)
class Problem:
    """An API error as the page shows it (RFC 9457 fields the API sends)."""

    status: int
    title: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def message(self) -> str:
        return self.detail or self.title


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    headers: httpx.Headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def problem(self) -> Problem | None:
        if self.ok:
            return None
        body = self.body if isinstance(self.body, dict) else {}
        return Problem(self.status, str(body.get("title") or "Request failed"), str(body.get("detail") or ""),
                       list(body.get("errors") or []))

    def json(self) -> Any:
        return self.body


class Api:
    """The API as the browser's user: `await api.get("/v1/me")`, `await api.post(path, json=...)`."""

    def __init__(self, request: Request, csrf_token: str | None = None) -> None:
        self.request = request
        self.csrf_token = csrf_token
        client = request.client
        self._transport = httpx.ASGITransport(
            app=request.app, client=(client.host, client.port) if client else ("127.0.0.1", 0))

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self.request.headers.get("user-agent", "")}
        # The proxy's view of the client, when the app trusts it (kernel.client decides).
        forwarded = self.request.headers.get("x-forwarded-for")
        if forwarded:
            headers["X-Forwarded-For"] = forwarded
        cookies = [f"{name}={value}" for name in FORWARDED_COOKIES
                   if (value := self.request.cookies.get(name))]
        if cookies:
            headers["Cookie"] = "; ".join(cookies)
        if self.csrf_token:
            headers[CSRF_HEADER] = self.csrf_token
        headers["X-Request-Id"] = self.request.headers.get("x-request-id") or uuid.uuid4().hex
        headers.update(extra or {})
        return headers

    async def call(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        async with httpx.AsyncClient(transport=self._transport, base_url=str(self.request.base_url)) as client:
            response = await client.request(method, path, json=json, params=clean, headers=self._headers(headers))
        body: Any
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        return Answer(response.status_code, body, response.headers)

    async def get(self, path: str, **params: Any) -> Answer:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, json: Any = None, *, headers: Mapping[str, str] | None = None) -> Answer:
        return await self.call("POST", path, json=json if json is not None else {}, headers=headers)

    async def patch(self, path: str, json: Any) -> Answer:
        return await self.call("PATCH", path, json=json)

    async def delete(self, path: str) -> Answer:
        return await self.call("DELETE", path)
