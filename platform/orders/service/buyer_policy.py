"""THE policy for what a viewer sees of an order's buyer, and the log of every read of buyer
contact data. Every view of buyer fields goes through `decide` (the seller's sub-orders and their
webhooks, the operator's orders, the affiliate's orders); nothing else renders buyer fields.

The fields: name, email, phone, shipping address. Who sees what:

- operator admin, support: everything (purpose `operations`); finance, viewer: the name, the
  email and phone masked, no address.
- seller (its own part): name and shipping address once the part is paid (fulfilment), any role;
  email and phone only to owner, admin, fulfilment, and only when the buyer consented to a purpose
  in the charter's `seller_contact_purposes`.
- the affiliate that brought the order: the name only if the charter says `affiliate_sees_name`
  (else masked), no address; email and phone unmasked only to owner, admin, marketing, and only
  when the buyer consented to a purpose in `affiliate_contact_purposes` of every seller's charter
  in the order (else masked).
- any other affiliate: nothing (the order is not theirs).

The charter that governs is the one the order's affiliate accepted last in each seller's program
(affiliates.service.charters; the default terms without one, and for orders no affiliate brought).
A buyer's own views (the order link, the organization's orders) are the buyer's and not filtered.

Every view that shows email, phone or the shipping address in full is logged (`BuyerDataAccess`:
who, which order and buyer, which fields, for which purpose); the buyer's organization, the
seller's admins and the operator read the log (`GET /v1/buyer-data-access`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from affiliates.service import charters
from affiliates.service.charters import DEFAULT_TERMS, Terms
from kernel import consents
from kernel.auth import Principal, Role
from kernel.clock import clock
from kernel.db import new_id
from orders.models import BuyerDataAccess, Order

FIELDS = ("name", "email", "phone", "shipping_address")
OPERATOR_CONTACT_ROLES = frozenset({"admin", "support"})
SELLER_CONTACT_ROLES = frozenset({"owner", "admin", "fulfilment"})
AFFILIATE_CONTACT_ROLES = frozenset({"owner", "admin", "marketing"})
LOGGED = ("email", "phone", "shipping_address")


@dataclass(frozen=True, slots=True)
class Viewer:
    kind: str  # operator | seller | affiliate | buyer
    organization_id: uuid.UUID
    role: str
    person_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    channel: str = "api"  # api | webhook

    @classmethod
    def of(cls, principal: Principal) -> Viewer:
        return cls(principal.role.value, principal.organization_id, principal.effective_role, principal.person_id,
                   principal.key_id)

    @classmethod
    def seller_webhook(cls, seller_id: uuid.UUID) -> Viewer:
        """The seller's own system, as its webhook endpoint (the seller's full role)."""
        return cls(Role.SELLER.value, seller_id, "owner", channel="webhook")


@dataclass(frozen=True, slots=True)
class BuyerView:
    """What the viewer may see; None: not shown at all."""

    name: str | None
    email: str | None
    phone: str | None
    shipping_address: dict[str, str | None] | None
    purpose: str | None  # why the contact fields are shown in full (None: they are not)
    full: tuple[str, ...]  # the logged fields shown in full

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "phone": self.phone,
                "shipping_address": self.shipping_address}


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(phone: str | None) -> str | None:
    return None if not phone else f"***{phone[-2:]}"


def mask_name(name: str) -> str:
    return " ".join(f"{part[:1]}." for part in name.split()) or "***"


def _address(order: Any) -> dict[str, str | None]:
    return {k: (str(v) if v is not None else None) for k, v in (order.shipping_address or {}).items()}


def _consented(order: Any, purposes: Iterable[str]) -> str | None:
    given = consents.resolved(order.consents)
    return next((p for p in purposes if given.get(p)), None)


TermsCache = dict[tuple[uuid.UUID, tuple[uuid.UUID, ...]], dict[uuid.UUID, Terms]]


def terms_for(session: Session, order: Any, seller_ids: Iterable[uuid.UUID],
              cache: TermsCache | None = None) -> dict[uuid.UUID, Terms]:
    """The charter terms governing `order` per seller: those its affiliate accepted (default terms
    for orders no affiliate brought, or a self-referral). `cache`: shared by the rows of one page,
    so a page reads each affiliate's terms once, not once a row."""
    sellers = list(seller_ids)
    if order.affiliate_id is None or order.self_referral:
        return dict.fromkeys(sellers, DEFAULT_TERMS)
    key = (order.affiliate_id, tuple(sellers))
    if cache is not None and key in cache:
        return cache[key]
    terms = charters.accepted_terms(session, order.affiliate_id, sellers)
    if cache is not None:
        cache[key] = terms
    return terms


def decide(order: Any, viewer: Viewer, terms: Mapping[uuid.UUID, Terms], *, seller_id: uuid.UUID | None = None,
           shipping: bool = True) -> BuyerView:
    """What `viewer` sees of `order`'s buyer (see the module docstring). `seller_id`: the seller
    whose part is viewed (a seller viewer); `shipping`: whether that part is paid (fulfilment)."""
    if viewer.kind == Role.BUYER.value:
        return BuyerView(order.buyer_name, order.buyer_email, order.buyer_phone, _address(order), "own data", ())
    if viewer.kind == Role.OPERATOR.value:
        if viewer.role in OPERATOR_CONTACT_ROLES:
            return BuyerView(order.buyer_name, order.buyer_email, order.buyer_phone, _address(order), "operations",
                             LOGGED)
        return BuyerView(order.buyer_name, mask_email(order.buyer_email), mask_phone(order.buyer_phone), None, None, ())
    if viewer.kind == Role.SELLER.value:
        assert seller_id is not None
        seller_terms = terms.get(seller_id, DEFAULT_TERMS)
        purpose = _consented(order, seller_terms.seller_contact_purposes)
        contact = purpose is not None and viewer.role in SELLER_CONTACT_ROLES
        full = (("email", "phone") if contact else ()) + (("shipping_address",) if shipping else ())
        return BuyerView(
            order.buyer_name if shipping else None, order.buyer_email if contact else None,
            order.buyer_phone if contact else None, _address(order) if shipping else None,
            purpose if contact else ("fulfilment" if shipping else None), full)
    if viewer.kind == Role.AFFILIATE.value and order.affiliate_id == viewer.organization_id:
        every = list(terms.values()) or [DEFAULT_TERMS]
        allowed = set(every[0].affiliate_contact_purposes).intersection(*(t.affiliate_contact_purposes for t in every))
        purpose = _consented(order, sorted(allowed, key=consents.NAMES.index))
        contact = purpose is not None and viewer.role in AFFILIATE_CONTACT_ROLES
        name = order.buyer_name if all(t.affiliate_sees_name for t in every) else mask_name(order.buyer_name)
        return BuyerView(name, order.buyer_email if contact else mask_email(order.buyer_email),
                         order.buyer_phone if contact else mask_phone(order.buyer_phone), None,
                         purpose if contact else None, ("email", "phone") if contact else ())
    return BuyerView(None, None, None, None, None, ())


def _log_row(order: Any, viewer: Viewer, view: BuyerView, at: datetime) -> dict[str, Any] | None:
    """The access log row for a view that shows buyer contact data in full (None: nothing shown)."""
    fields = [f for f in view.full if getattr(view, f) is not None]
    if not fields:
        return None
    return {"id": new_id(), "order_id": order.id, "buyer_organization_id": order.buyer_organization_id,
            "viewer_kind": viewer.kind, "viewer_organization_id": viewer.organization_id, "viewer_role": viewer.role,
            "person_id": viewer.person_id, "api_key_id": viewer.key_id, "channel": viewer.channel,
            "fields": fields, "purpose": view.purpose or "", "at": at}


class AccessLog:
    """The reads of one response, written to the log in ONE insert (`write`): a page of 50 rows
    is one statement, not 50 (each of which an autoflush would have sent on its own)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def note(self, order: Any, viewer: Viewer, view: BuyerView) -> None:
        row = _log_row(order, viewer, view, clock.now())
        if row is not None:
            self.rows.append(row)

    def write(self, session: Session) -> None:
        if self.rows:
            session.execute(insert(BuyerDataAccess), self.rows)
            self.rows = []


def log_reads(session: Session, order: Any, viewer: Viewer, view: BuyerView) -> None:
    """Write the access log row for one view that shows buyer contact data in full."""
    log = AccessLog()
    log.note(order, viewer, view)
    log.write(session)


def view_and_log(session: Session, order: Any, viewer: Viewer, *, seller_id: uuid.UUID | None = None,
                 shipping: bool = True, cache: TermsCache | None = None, log: AccessLog | None = None) -> BuyerView:
    """`decide` with the charter terms read for it, and its read logged: what every caller uses
    (`cache`: one per page of rows, see `terms_for`; `log`: a page's reads, written by the caller
    in one insert, `AccessLog.write`; without it the read is written now)."""
    sellers = [seller_id] if seller_id is not None else [s.seller_id for s in order.sub_orders]
    view = decide(order, viewer, terms_for(session, order, sellers, cache), seller_id=seller_id, shipping=shipping)
    if log is not None:
        log.note(order, viewer, view)
    else:
        log_reads(session, order, viewer, view)
    return view


def access_log(session: Session, viewer: Viewer, *, order_id: uuid.UUID | None, limit: int) -> list[BuyerDataAccess]:
    """The reads a viewer may see: an operator all; a seller its own team's; a buyer organization
    those of its orders."""
    stmt = select(BuyerDataAccess).order_by(BuyerDataAccess.at.desc(), BuyerDataAccess.id.desc()).limit(limit)
    if viewer.kind == Role.SELLER.value:
        stmt = stmt.where(BuyerDataAccess.viewer_kind == Role.SELLER.value,
                          BuyerDataAccess.viewer_organization_id == viewer.organization_id)
    elif viewer.kind == Role.BUYER.value:
        stmt = stmt.where(BuyerDataAccess.buyer_organization_id == viewer.organization_id)
    elif viewer.kind != Role.OPERATOR.value:
        stmt = stmt.where(BuyerDataAccess.id.is_(None))
    if order_id is not None:
        stmt = stmt.where(BuyerDataAccess.order_id == order_id)
    return list(session.scalars(stmt))


def orders_brought_by(session: Session, affiliate_id: uuid.UUID, limit: int) -> list[Order]:
    return list(session.scalars(select(Order).where(Order.affiliate_id == affiliate_id, Order.self_referral.is_(False))
                                .order_by(Order.id.desc()).limit(limit)))
