"""A buyer's privacy requests, run by an operator: an export of everything held about an email,
and its erasure.

Erasure pseudonymizes instead of deleting: every order placed with the email keeps its rows, its
amounts, sub-orders, commissions, refunds and journal entries (so the ledger audit stays clean and
sellers' and affiliates' earnings are untouched), while the personal data goes: the email becomes
`erased-<16 hex of its SHA-256>@erased.invalid` (the same pseudonym for every order of that email,
so growth figures still count one customer), the name `erased`, the phone and the shipping
address are removed (the country is kept: it decided taxes and shipping), the link stops working,
and queued or sent mails to the email lose their address and body. The access log keeps its rows
(they hold ids, not personal data). A new order with the same email later is a new customer.
A buyer account on the email (orders.service.buyer_accounts) is closed: its row and its buyer
membership go, so no key or session of its person sees the email's orders any more (the person's
login itself belongs to the people domain and stays, with any other memberships it has).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from kernel.accounts import Membership
from kernel.auth import Role
from kernel.locking import lock
from kernel.mail import OutboxMail
from orders.models import BuyerAccount, BuyerDataAccess, Order, OrderConsentChange
from orders.service import order_links

ERASED_DOMAIN = "erased.invalid"


def pseudonym(email: str) -> str:
    return f"erased-{hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]}@{ERASED_DOMAIN}"


def _orders(session: Session, email: str) -> list[Order]:
    return list(session.scalars(select(Order).where(Order.buyer_email == email.strip().lower()).order_by(Order.id)))


def export(session: Session, email: str) -> dict[str, Any]:
    """Everything held about the buyer with this email: each order as its link shows it, the
    consent changes, and who read their contact data."""
    orders = _orders(session, email)
    ids = [order.id for order in orders]
    changes = list(session.scalars(select(OrderConsentChange).where(OrderConsentChange.order_id.in_(ids))
                                   .order_by(OrderConsentChange.created_at))) if ids else []
    reads = list(session.scalars(select(BuyerDataAccess).where(BuyerDataAccess.order_id.in_(ids))
                                 .order_by(BuyerDataAccess.at))) if ids else []
    account = session.scalars(select(BuyerAccount).where(BuyerAccount.email == email.strip().lower())).first()
    return {
        "email": email.strip().lower(),
        "buyer_account": None if account is None else {
            "created_at": account.created_at.isoformat(),
            "confirmed_at": account.confirmed_at.isoformat() if account.confirmed_at else None,
        },
        "orders": [order_links.status_view(session, order).model_dump(mode="json") for order in orders],
        "consent_changes": [{"order_id": str(c.order_id), "purpose": c.purpose, "granted": c.granted,
                             "source": c.source, "at": c.created_at.isoformat()} for c in changes],
        "contact_data_reads": [{"order_id": str(r.order_id), "viewer_kind": r.viewer_kind,
                                "viewer_organization_id": str(r.viewer_organization_id), "fields": r.fields,
                                "purpose": r.purpose, "at": r.at.isoformat()} for r in reads],
    }


@dataclass(frozen=True, slots=True)
class Erased:
    orders: int
    mails: int
    pseudonym: str
    buyer_accounts: int


def erase(session: Session, email: str) -> Erased:
    """Pseudonymize every order of `email` and its mails (see the module docstring). Idempotent:
    erasing again finds nothing."""
    email = email.strip().lower()
    alias = pseudonym(email)
    # The buyer account first: memberships and buyer accounts come before orders in the lock order.
    accounts = list(session.scalars(select(BuyerAccount).where(BuyerAccount.email == email)))
    for account in accounts:
        session.execute(delete(Membership).where(
            Membership.person_id == account.person_id, Membership.organization_id == account.person_id,
            Membership.organization_kind == Role.BUYER.value))
        session.delete(account)
    session.flush()
    orders = list(lock(session, select(Order).where(Order.buyer_email == email), reread=True).scalars())
    for order in orders:
        country = (order.shipping_address or {}).get("country")
        order.buyer_email, order.buyer_name, order.buyer_phone = alias, "erased", None
        order.shipping_address = {"country": country} if country else {}
        order.status_token_hash = None
    mails = cast(CursorResult[Any], session.execute(
        update(OutboxMail).where(OutboxMail.to_address == email).values(to_address=alias, subject="erased",
                                                                         body="erased"))).rowcount
    session.flush()
    return Erased(len(orders), int(mails or 0), alias, len(accounts))
