"""Buyer organizations' routes (orders.service.buyer_orgs): sign-up, members' spending limits,
addresses, orders placed by members, and approvers' decisions. Thin: each calls the service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Response
from sqlalchemy.orm import Session

from kernel import mail
from kernel.auth import Principal, Role
from kernel.db import session_scope
from kernel.deps import (
    DbSession,
    NoStore,
    OperatorPrincipal,
    PublicRateLimit,
    PublicWriteAudit,
    StrictQuery,
    get_runtime,
    require,
)
from kernel.errors import Unprocessable
from kernel.people import list_members
from kernel.runtime import Runtime
from kernel.schemas import Page, decode_cursor, encode_cursor, money
from kernel.tasking import enqueue_after_commit
from orders.models import Invoice, Order
from orders.schemas import (
    ApprovalOut,
    BuyerAddressIn,
    BuyerAddressOut,
    BuyerMemberOut,
    BuyerOrderIn,
    BuyerOrganizationOut,
    BuyerOrgOrderOut,
    BuyerSignedUpOut,
    BuyerSignUpIn,
    DecisionIn,
    InvoiceOut,
    InvoicePaymentIn,
    InvoiceTermsIn,
    InvoiceTermsOut,
    OrderBuyerOut,
    SpendingLimitIn,
)
from orders.service import buyer_orgs, checkout, invoices, payments, settlement, views

router = APIRouter(prefix="/v1", dependencies=[StrictQuery])
BuyerPrincipal = Annotated[Principal, Depends(require(Role.BUYER))]
ME = "/buyer-organizations/me"


def _org_out(session: Session, organization_id: uuid.UUID) -> BuyerOrganizationOut:
    organization = buyer_orgs.get(session, organization_id)
    limits = buyer_orgs.limits(session, organization_id)

    def limit_of(person_id: uuid.UUID) -> Any:
        row = limits.get(person_id)
        return money(row.amount, row.currency) if row is not None else None

    return BuyerOrganizationOut(
        id=organization.id, name=organization.name, email=organization.email,
        invoice_terms_days=organization.invoice_terms_days,
        members=[BuyerMemberOut(person_id=m.person.id, email=m.person.email, name=m.person.name, role=m.membership.role,
                                spending_limit=limit_of(m.person.id)) for m in list_members(session, organization_id)],
        addresses=[BuyerAddressOut(id=a.id, label=a.label, address=a.address)
                   for a in buyer_orgs.addresses(session, organization_id)],
    )


def _org_id(principal: Principal) -> uuid.UUID:
    assert principal.subject_id is not None
    return principal.subject_id


@router.post("/buyer-organizations", status_code=201, response_model=BuyerSignedUpOut, tags=["buyers"],
             dependencies=[PublicRateLimit, NoStore])
def sign_up(body: BuyerSignUpIn, session: DbSession, audit: PublicWriteAudit) -> BuyerSignedUpOut:
    """Public: a business that buys signs up; its first person becomes its admin (a person with this
    password; an existing person proves it with theirs) and gets a personal key (shown once)."""
    done = buyer_orgs.sign_up(session, body.name, str(body.email).lower(), body.owner_name,
                              body.password.get_secret_value())
    audit.actor(done.person.id, (Role.BUYER.value, done.organization.id))
    audit.object("buyer_organization", done.organization.id)
    return BuyerSignedUpOut(organization=_org_out(session, done.organization.id), person_id=done.person.id,
                            api_key=done.key.key)


@router.get(ME, response_model=BuyerOrganizationOut, tags=["buyers"])
def get_mine(session: DbSession, principal: BuyerPrincipal) -> BuyerOrganizationOut:
    """The caller's buyer organization: members with their buying roles and limits, addresses."""
    return _org_out(session, _org_id(principal))


@router.put(ME + "/members/{person_id}/spending-limit", response_model=BuyerOrganizationOut, tags=["buyers"])
def set_spending_limit(
    person_id: uuid.UUID, body: SpendingLimitIn, session: DbSession, principal: BuyerPrincipal
) -> BuyerOrganizationOut:
    """Admin: what a member may order (per order, in one currency) without an approver."""
    limit = (body.limit.currency, body.limit.amount) if body.limit is not None else None
    buyer_orgs.set_limit(session, _org_id(principal), person_id, limit)
    return _org_out(session, _org_id(principal))


@router.post(ME + "/addresses", status_code=201, response_model=BuyerAddressOut, tags=["buyers"])
def add_address(body: BuyerAddressIn, session: DbSession, principal: BuyerPrincipal) -> BuyerAddressOut:
    """Admin: a shipping address members may name when they order."""
    row = buyer_orgs.add_address(session, _org_id(principal), body.label, body.address.model_dump())
    return BuyerAddressOut(id=row.id, label=row.label, address=row.address)


def _order_out(session: Session, order: Order) -> BuyerOrgOrderOut:
    approval = buyer_orgs.approval_of(session, [order.id]).get(order.id)
    return BuyerOrgOrderOut.model_validate({
        **views.order_for_buyer(order).model_dump(), "placed_by_person_id": order.placed_by_person_id,
        "approval": ApprovalOut(decision=approval.decision, person_id=approval.person_id, reason=approval.reason,
                                decided_at=approval.decided_at) if approval else None,
        "invoice": _invoice_out(invoice) if (invoice := invoices.of_order(session, order.id)) else None,
    })


def _invoice_out(invoice: Invoice) -> InvoiceOut:
    return InvoiceOut(
        id=invoice.id, order_id=invoice.order_id, buyer_organization_id=invoice.buyer_organization_id,
        amount=money(invoice.amount, invoice.currency), status=invoice.status,
        overdue=invoices.is_overdue(invoice), issued_at=invoice.issued_at, due_at=invoice.due_at,
        paid_at=invoice.paid_at, payment_reference=invoice.payment_reference,
    )


def _pay_later(background: BackgroundTasks, runtime: Runtime, order: Any) -> None:
    """On the Stripe rail, the order's PaymentIntent is created after the request's transaction
    commits (a network call never holds a row lock), by a background task of this process; the
    organization reads its client_secret from its orders list. A lost one is made again by a
    retry of the order with the same Idempotency-Key (or the approval's own attempt)."""
    if payments.payment_needed(order):
        background.add_task(_create_payment, runtime, order.id)


def _create_payment(runtime: Runtime, order_id: uuid.UUID) -> None:
    with session_scope(runtime.sessions) as session:
        order = session.get(Order, order_id)
        if order is None or not payments.payment_needed(order):
            return
    payment = payments.create_payment(runtime.rail, order)
    if payment:
        with session_scope(runtime.sessions) as session:
            payments.record_payment(session, order_id, payment)


@router.post(ME + "/orders", status_code=201, response_model=OrderBuyerOut, tags=["buyers"],
             responses={404: {"description": "`shipping_address_id` names no address of the organization"}})
def place_order(
    body: BuyerOrderIn, session: DbSession, principal: BuyerPrincipal, background: BackgroundTasks,
    runtime: Annotated[Runtime, Depends(get_runtime)],
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=255)],
) -> Response:
    """A member orders for the organization. Above the member's spending limit the order is
    `awaiting_approval`: its stock is held (`approval_hold_hours`) and the approvers are emailed;
    within it, the order proceeds to payment like any checkout. (Not the guest's hot path: this
    runs in the request's transaction, with the member's limit read first.)"""
    if (body.shipping_address is None) == (body.shipping_address_id is None):
        raise Unprocessable("send either shipping_address or shipping_address_id")
    buyer, email, name = buyer_orgs.buyer_of(session, principal)
    address = (body.shipping_address.model_dump() if body.shipping_address is not None else
               buyer_orgs.address(session, buyer.organization_id, body.shipping_address_id))  # type: ignore[arg-type]
    request = checkout.CheckoutRequest(
        items=[checkout.CartItem(i.variant_id, i.quantity) for i in body.items], buyer_email=email,
        buyer_name=name[:200], shipping_address=address, idempotency_key=idempotency_key,
        storefront_slug=body.storefront, coupon_code=body.coupon_code,
        canonical_body={**body.canonical(), "organization": str(buyer.organization_id)},
        consents=body.consents, organization=buyer,
        shipping_choices={choice.seller_id: choice.rate_id for choice in body.shipping or ()},
    )
    result = checkout.place_order(session, runtime.settings, request)
    order = result.order
    if result.mail_id is not None and mail.smtp_configured(runtime.settings):
        enqueue_after_commit(session, mail.SEND_TASK, str(result.mail_id))
    if not result.replayed and order.status == "awaiting_approval":
        buyer_orgs.notify_approvers(session, runtime.settings, order.id)
    if not result.replayed:
        invoices.issue(session, order.id)  # on account, if the organization has invoice terms
    _pay_later(background, runtime, order)
    link = (result.link.token, result.link.url) if result.link else None
    out = Response(views.order_for_buyer_json(order, link), status_code=201, media_type="application/json",
                   headers={"Cache-Control": "no-store"})  # the order link's token, the client secret
    if result.replayed:
        out.headers["Idempotent-Replayed"] = "true"
    return out


@router.get(ME + "/orders", response_model=list[BuyerOrgOrderOut], tags=["buyers"], dependencies=[NoStore])
def list_orders(
    session: DbSession, principal: BuyerPrincipal, status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[BuyerOrgOrderOut]:
    """The organization's orders, newest first (`status=awaiting_approval`: what waits for an approver)."""
    return [_order_out(session, o) for o in buyer_orgs.orders_of(session, _org_id(principal), status=status,
                                                                   limit=limit)]


def _decide(
    runtime: Runtime, principal: Principal, order_id: uuid.UUID, approve: bool, reason: str, session: Session,
    background: BackgroundTasks,
) -> BuyerOrgOrderOut:
    order = buyer_orgs.decide(session, runtime.settings, principal, order_id, approve=approve, reason=reason)
    _pay_later(background, runtime, order)
    return _order_out(session, order)


@router.post(ME + "/orders/{order_id}/approve", response_model=BuyerOrgOrderOut, tags=["buyers"],
             dependencies=[NoStore])
def approve(
    order_id: uuid.UUID, session: DbSession, principal: BuyerPrincipal,
    background: BackgroundTasks, runtime: Annotated[Runtime, Depends(get_runtime)], body: DecisionIn | None = None,
) -> BuyerOrgOrderOut:
    """Approver: the order proceeds to payment (its unpaid timeout starts now). Not the placer's
    own order; an order decided already is a 409 (two approvers at once: one decides)."""
    return _decide(runtime, principal, order_id, True, body.reason if body else "", session, background)


@router.post(ME + "/orders/{order_id}/reject", response_model=BuyerOrgOrderOut, tags=["buyers"],
             dependencies=[NoStore])
def reject(
    order_id: uuid.UUID, session: DbSession, principal: BuyerPrincipal,
    background: BackgroundTasks, runtime: Annotated[Runtime, Depends(get_runtime)], body: DecisionIn | None = None,
) -> BuyerOrgOrderOut:
    """Approver: the order is cancelled and its stock given back."""
    return _decide(runtime, principal, order_id, False, body.reason if body else "", session, background)


# --- invoice terms (orders.service.invoices) ------------------------------------------------------

InvoiceStatusQuery = Annotated[Literal["open", "paid", "void"] | None, Query()]


def _invoice_page(
    session: Session, organization_id: uuid.UUID | None, status: str | None, overdue: bool, cursor: str | None,
    limit: int,
) -> Page[InvoiceOut]:
    rows = invoices.listed(session, organization_id=organization_id, status=status, overdue=overdue,
                           after=decode_cursor(cursor), limit=limit + 1)
    return Page(items=[_invoice_out(i) for i in rows[:limit]],
                next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None)


@router.put("/buyer-organizations/{buyer_organization_id}/invoice-terms", response_model=InvoiceTermsOut,
            tags=["buyers"])
def set_invoice_terms(
    buyer_organization_id: uuid.UUID, body: InvoiceTermsIn, session: DbSession, principal: OperatorPrincipal,
) -> InvoiceTermsOut:
    """Operator: trust a buyer organization with invoice terms (net days): its orders on the manual
    rail are then placed on account, payable by a due date, the ledger showing the receivable until
    the payment is recorded. `null` takes the terms away (invoices issued stay due)."""
    organization = invoices.set_terms(session, buyer_organization_id, body.net_days)
    return InvoiceTermsOut(buyer_organization_id=organization.id, net_days=organization.invoice_terms_days)


@router.get("/invoices", response_model=Page[InvoiceOut], tags=["buyers"])
def list_invoices(
    session: DbSession, principal: OperatorPrincipal, status: InvoiceStatusQuery = None, overdue: bool = False,
    buyer_organization_id: uuid.UUID | None = None, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[InvoiceOut]:
    """Operator: invoices newest first; `overdue=true`: the open ones past their due date."""
    return _invoice_page(session, buyer_organization_id, status, overdue, cursor, limit)


@router.post("/invoices/{invoice_id}/payments", response_model=InvoiceOut, tags=["buyers"],
             responses={409: {"description": "the invoice was paid already, or its order cancelled"},
                        422: {"description": "the amount is not the invoice's, in full, in its currency"}})
def record_invoice_payment(
    invoice_id: uuid.UUID, body: InvoicePaymentIn, session: DbSession, principal: OperatorPrincipal,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> InvoiceOut:
    """Operator: the buyer's payment of an invoice arrived (once; its amount in full). The order is
    paid: the receivable is collected and the sellers' and market makers' shares are booked as for
    any payment (`POST /v1/orders/{id}/mark-paid` does the same for the full amount)."""
    invoice = settlement.record_invoice_payment(session, runtime.settings, invoice_id, body.amount.amount,
                                                body.amount.currency, body.reference)
    return _invoice_out(invoice)


@router.get(ME + "/invoices", response_model=Page[InvoiceOut], tags=["buyers"])
def list_my_invoices(
    session: DbSession, principal: BuyerPrincipal, status: InvoiceStatusQuery = None, overdue: bool = False,
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[InvoiceOut]:
    """The organization's invoices (orders on account), newest first; `overdue=true`: what is late."""
    return _invoice_page(session, _org_id(principal), status, overdue, cursor, limit)
