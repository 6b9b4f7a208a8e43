"""Buyer organizations: businesses that buy, with people in buying roles, and orders that wait for
an approver.

- An organization signs up with its first person, who becomes its `admin` (kernel.people); the
  admin invites members with a buying role (kernel.permissions.BUYER_ROLES: requester, approver,
  payer) through the same invitations every organization uses.
- Each member has a spending limit per order, in one currency (`BuyerSpendingLimit`; none set:
  every order of theirs waits). An order above the placer's limit is written `awaiting_approval`
  by the checkout itself (orders.service.checkout.OrganizationBuyer), its stock reserved, and held
  for `settings.approval_hold_hours`.
- An approver (or the admin), never the order's own placer, approves it (it proceeds to payment:
  `awaiting_payment` with the usual unpaid timeout) or rejects it (cancelled, stock given back).
  The decision locks the order's row first and is one `order_approvals` row (unique per order):
  two approvers at once make one decision, the second gets a 409.
- A hold nobody decided expires: the `orders.expire_approval_holds` beat job cancels the order and
  gives its stock back (decision `expired`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel import mail, people
from kernel.accounts import Membership, Person
from kernel.auth import IssuedKey, Principal, Role
from kernel.clock import clock
from kernel.errors import Forbidden, NotFound
from kernel.locking import lock
from kernel.settings import Settings
from orders.errors import InvalidTransition, OrderNotFound
from orders.models import (
    BuyerAddress,
    BuyerOrganization,
    BuyerSpendingLimit,
    Order,
    OrderApproval,
    OrderStatus,
)
from orders.service import invoices, settlement
from orders.service.checkout import OrganizationBuyer
from orders.service.states import move_order

APPROVERS = ("admin", "approver")


class BuyerOrganizationNotFound(NotFound):
    type = "buyer-organization-not-found"


@dataclass(frozen=True, slots=True)
class SignedUp:
    organization: BuyerOrganization
    person: Person
    key: IssuedKey


def sign_up(session: Session, name: str, email: str, owner_name: str, password: str) -> SignedUp:
    """A new buyer organization and its admin (an existing person proves it with their password),
    with a personal key for the admin."""
    organization = BuyerOrganization(name=name, email=email)
    session.add(organization)
    session.flush()
    person = people.sign_up_owner(session, Role.BUYER, organization.id, email, owner_name, password)
    key = people.issue_personal_key(session, person.id, Role.BUYER, organization.id, None, "sign-up")
    return SignedUp(organization, person, key)


def get(session: Session, organization_id: uuid.UUID) -> BuyerOrganization:
    organization = session.get(BuyerOrganization, organization_id)
    if organization is None:
        raise BuyerOrganizationNotFound(f"no buyer organization {organization_id}")
    return organization


def limits(session: Session, organization_id: uuid.UUID) -> dict[uuid.UUID, BuyerSpendingLimit]:
    rows = session.scalars(select(BuyerSpendingLimit).where(BuyerSpendingLimit.organization_id == organization_id))
    return {row.person_id: row for row in rows}


def addresses(session: Session, organization_id: uuid.UUID) -> list[BuyerAddress]:
    return list(session.scalars(select(BuyerAddress).where(BuyerAddress.organization_id == organization_id)
                                .order_by(BuyerAddress.created_at, BuyerAddress.id)))


def set_limit(
    session: Session, organization_id: uuid.UUID, person_id: uuid.UUID, limit: tuple[str, int] | None
) -> BuyerSpendingLimit | None:
    """Set (or with None remove) a member's spending limit per order."""
    if people.membership_of(session, organization_id, person_id) is None:
        raise NotFound(f"person {person_id} is not a member of this organization")
    stmt = select(BuyerSpendingLimit).where(BuyerSpendingLimit.organization_id == organization_id,
                                            BuyerSpendingLimit.person_id == person_id)
    row = lock(session, stmt).scalar_one_or_none()
    if limit is None:
        if row is not None:
            session.delete(row)
            session.flush()
        return None
    currency, amount = limit
    if row is None:
        row = BuyerSpendingLimit(organization_id=organization_id, person_id=person_id, currency=currency, amount=amount)
        session.add(row)
    row.currency, row.amount, row.updated_at = currency, amount, clock.now()
    session.flush()
    return row


def add_address(session: Session, organization_id: uuid.UUID, label: str, address: dict[str, Any]) -> BuyerAddress:
    row = BuyerAddress(organization_id=organization_id, label=label, address=address)
    session.add(row)
    session.flush()
    return row


def address(session: Session, organization_id: uuid.UUID, address_id: uuid.UUID) -> dict[str, Any]:
    row = session.get(BuyerAddress, address_id)
    if row is None or row.organization_id != organization_id:
        raise NotFound(f"no address {address_id} in this organization")
    return dict(row.address)


def buyer_of(session: Session, principal: Principal) -> tuple[OrganizationBuyer, str, str]:
    """The placing member as the checkout needs it, and the buyer email and name the order carries
    (the member's; an organization key: the organization's)."""
    assert principal.subject_id is not None
    organization = get(session, principal.subject_id)
    person = session.get(Person, principal.person_id) if principal.person_id is not None else None
    row = limits(session, organization.id).get(person.id) if person is not None else None
    buyer = OrganizationBuyer(organization.id, person.id if person else None,
                              (row.currency, row.amount) if row is not None else None)
    if person is None:
        return buyer, organization.email, organization.name
    return buyer, person.email, f"{person.name or person.email} ({organization.name})"


def notify_approvers(session: Session, settings: Settings, order_id: uuid.UUID) -> int:
    """Mail the organization's approvers (not the placer) that an order waits for them."""
    order = session.get(Order, order_id)
    if order is None or order.status != OrderStatus.AWAITING_APPROVAL or order.buyer_organization_id is None:
        return 0
    rows = session.execute(
        select(Person.email).join(Membership, Membership.person_id == Person.id).where(
            Membership.organization_id == order.buyer_organization_id, Membership.role.in_(APPROVERS),
            Person.id != order.placed_by_person_id)).scalars().all()
    for email in rows:
        mail.queue(session, email, f"An order waits for your approval ({order.total_amount} {order.currency})",
                   f"Order {order.id} by {order.buyer_name} is above their spending limit.\n"
                   f"Approve or reject it: POST {settings.public_base_url.rstrip('/')}/v1/buyer-organizations/me/"
                   f"orders/{order.id}/approve (or /reject) before {order.expires_at:%Y-%m-%d %H:%M} UTC, when its "
                   f"reserved stock is released.\n", kind="approval_request")
    return len(rows)


def decide(
    session: Session, settings: Settings, principal: Principal, order_id: uuid.UUID, *, approve: bool, reason: str,
) -> Order:
    """An approver's decision on an order awaiting approval (see the module docstring)."""
    order = settlement.lock_order(session, order_id)
    if order.buyer_organization_id is None or order.buyer_organization_id != principal.subject_id:
        raise OrderNotFound(f"no order {order_id} of this organization")
    if order.status != OrderStatus.AWAITING_APPROVAL:
        raise InvalidTransition(f"order {order.id} is {order.status}: it was decided already, or never waited")
    if principal.person_id is not None and principal.person_id == order.placed_by_person_id:
        raise Forbidden("an order is approved by someone other than the member who placed it")
    now = clock.now()
    if approve:
        move_order(order, OrderStatus.AWAITING_PAYMENT)
        order.expires_at = now + timedelta(minutes=settings.unpaid_order_timeout_minutes)
        session.flush()
        invoices.issue(session, order.id)  # on account, if the organization has invoice terms
    else:
        settlement.cancel_unpaid(session, order.id, reason=f"rejected by an approver: {reason}"[:200])
    decision = "approved" if approve else "rejected"
    session.add(OrderApproval(order_id=order.id, decision=decision, person_id=principal.person_id, reason=reason,
                              decided_at=now))
    session.flush()
    _tell_placer(session, order, decision, reason)
    return order


def _tell_placer(session: Session, order: Order, decision: str, reason: str) -> None:
    placer = session.get(Person, order.placed_by_person_id) if order.placed_by_person_id else None
    if placer is None:
        return
    then = "it proceeds to payment" if decision == "approved" else "its reserved stock was released"
    why = f" ({reason})" if reason else ""
    mail.queue(session, placer.email, f"Your order was {decision}",
               f"Your order {order.id} was {decision}{why}: {then}.\n", kind="approval_decision")


def expired_hold_ids(session: Session, limit: int = 500) -> list[uuid.UUID]:
    return list(session.scalars(select(Order.id).where(
        Order.status == OrderStatus.AWAITING_APPROVAL, Order.expires_at <= clock.now()
    ).order_by(Order.expires_at).limit(limit)))


def expire_hold(session: Session, order_id: uuid.UUID) -> bool:
    """Cancel an order whose approval hold ran out, giving its stock back. Idempotent."""
    order = settlement.lock_order(session, order_id)
    if order.status != OrderStatus.AWAITING_APPROVAL or order.expires_at > clock.now():
        return False
    settlement.cancel_unpaid(session, order.id, reason="no approver decided before the hold expired")
    session.add(OrderApproval(order_id=order.id, decision="expired", person_id=None, reason="", decided_at=clock.now()))
    session.flush()
    _tell_placer(session, order, "expired", "")
    return True


def approval_of(session: Session, order_ids: list[uuid.UUID]) -> dict[uuid.UUID, OrderApproval]:
    if not order_ids:
        return {}
    return {a.order_id: a for a in session.scalars(select(OrderApproval).where(OrderApproval.order_id.in_(order_ids)))}


def orders_of(session: Session, organization_id: uuid.UUID, *, status: str | None, limit: int) -> list[Order]:
    stmt = select(Order).where(Order.buyer_organization_id == organization_id).order_by(Order.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(Order.status == status)
    return list(session.scalars(stmt))
