"""Invoice terms: a buyer organization the operator trusts orders on account.

- An operator gives a buyer organization terms (net N days: `set_terms`). Its orders on the
  manual rail are then placed on account: when such an order is ready for payment (at checkout,
  or when its approver approves it) `issue` writes its invoice, payable by `due_at`, and the
  order no longer expires unpaid (settlement.expired_unpaid_order_ids leaves invoiced orders
  alone: the buyer has until the due date and beyond; an overdue invoice is listed, not cancelled).
- The ledger shows what the organization owes from issue to payment: `invoice.issued` debits the
  organization's receivable (`buyer_org/<organization>/receivable`, per currency) and credits the
  platform's `invoiced` (billed, not yet collected). The payment is recorded once, under the
  order's row lock, by `settlement.mark_paid` (the operator's invoice payment or the manual
  mark-paid): `invoice.paid` takes the receivable back, and `order.paid` books the shares as for
  any order. So sellers and market makers are owed nothing until the money arrived: their shares
  enter `pending` at payment, and the holding periods start from there as always.
- An order cancelled unpaid voids its open invoice (`invoice.voided` takes the receivable back).
- The audit (`receivables_match_open_invoices`) proves each organization's receivable equals its
  open invoices and each invoice carries exactly the postings of its status.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel import ledger, locking
from kernel.clock import clock
from kernel.errors import NotFound, Unprocessable
from kernel.ledger import PLATFORM, AuditFinding, JournalEntry, JournalTransaction, Posting
from orders.models import BuyerOrganization, Invoice, InvoiceStatus, Order, OrderStatus

BUYER_ORG = "buyer_org"  # owner type: a buyer organization
RECEIVABLE = "receivable"  # buyer_org: what it owes the platform for orders on account (a debit: negative)
INVOICED = "invoiced"  # platform: billed on account, not yet collected (mirrors the receivables)

ISSUED, PAID, VOIDED = "invoice.issued", "invoice.paid", "invoice.voided"
MAX_TERMS_DAYS = 180


class InvoiceNotFound(NotFound):
    type = "invoice-not-found"


def set_terms(session: Session, organization_id: uuid.UUID, days: int | None) -> BuyerOrganization:
    """Operator: trust the organization with net `days` terms (None: take them away; orders
    invoiced already stay payable by their due dates)."""
    organization = locking.lock(session, select(BuyerOrganization).where(
        BuyerOrganization.id == organization_id)).scalar_one_or_none()
    if organization is None:
        raise NotFound(f"no buyer organization {organization_id}")
    organization.invoice_terms_days = days
    session.flush()
    return organization


def issue(session: Session, order_id: uuid.UUID) -> Invoice | None:
    """Place the order on account if its organization has terms and it waits for payment on the
    manual rail: its invoice and the receivable. None otherwise (paid at once, as any order).
    Called where the order becomes payable (checkout, an approval), once per order (UNIQUE)."""
    order = session.get(Order, order_id)
    if (order is None or order.buyer_organization_id is None or order.payment_rail != "manual"
            or order.status != OrderStatus.AWAITING_PAYMENT):
        return None
    days = session.scalar(select(BuyerOrganization.invoice_terms_days)
                          .where(BuyerOrganization.id == order.buyer_organization_id))
    if days is None:
        return None
    now = clock.now()
    invoice = Invoice(order_id=order.id, buyer_organization_id=order.buyer_organization_id, currency=order.currency,
                      amount=order.total_amount, status=InvoiceStatus.OPEN.value, issued_at=now,
                      due_at=now + timedelta(days=days))
    session.add(invoice)
    session.flush()
    _post(session, ISSUED, invoice, -invoice.amount, memo=f"order {order.id} on account, due {invoice.due_at:%Y-%m-%d}")
    return invoice


def _post(session: Session, kind: str, invoice: Invoice, receivable: int, memo: str) -> None:
    ledger.post(session, kind=kind, reference_type="invoice", reference_id=invoice.id, currency=invoice.currency,
                order_id=invoice.order_id, memo=memo, postings=[
                    Posting(BUYER_ORG, invoice.buyer_organization_id, RECEIVABLE, receivable, "invoice", invoice.id),
                    Posting(PLATFORM, None, INVOICED, -receivable, "invoice", invoice.id),
                ])


def open_invoice_of(session: Session, order: Order) -> Invoice | None:
    if order.buyer_organization_id is None:
        return None
    found: Invoice | None = session.scalars(select(Invoice).where(
        Invoice.order_id == order.id, Invoice.status == InvoiceStatus.OPEN.value)).one_or_none()
    return found


def of_order(session: Session, order_id: uuid.UUID) -> Invoice | None:
    found: Invoice | None = session.scalars(select(Invoice).where(Invoice.order_id == order_id)).one_or_none()
    return found


def check_payment(invoice: Invoice, amount: int, currency: str) -> None:
    """An invoice is paid in full, in its currency: anything else is refused before any write."""
    if (amount, currency) != (invoice.amount, invoice.currency):
        raise Unprocessable(f"invoice {invoice.id} is for {invoice.amount} {invoice.currency}; "
                            f"a payment of {amount} {currency} does not settle it")


def settle(session: Session, order: Order, reference: str | None) -> None:
    """The order (locked by the caller, settlement.mark_paid) was paid: its open invoice, if any,
    is paid and its receivable taken back."""
    invoice = open_invoice_of(session, order)
    if invoice is None:
        return
    invoice.status, invoice.paid_at = InvoiceStatus.PAID.value, clock.now()
    invoice.payment_reference = reference
    session.flush()
    _post(session, PAID, invoice, invoice.amount, memo=f"invoice of order {order.id} paid")


def void(session: Session, order: Order) -> None:
    """The order (locked by the caller, settlement.cancel_unpaid) was cancelled unpaid."""
    invoice = open_invoice_of(session, order)
    if invoice is None:
        return
    invoice.status = InvoiceStatus.VOID.value
    session.flush()
    _post(session, VOIDED, invoice, invoice.amount, memo=f"order {order.id} cancelled unpaid")


def get(session: Session, invoice_id: uuid.UUID, organization_id: uuid.UUID | None = None) -> Invoice:
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or (organization_id is not None and invoice.buyer_organization_id != organization_id):
        raise InvoiceNotFound(f"no invoice {invoice_id}")
    return invoice


def listed(
    session: Session, *, organization_id: uuid.UUID | None, status: str | None, overdue: bool,
    after: uuid.UUID | None, limit: int,
) -> list[Invoice]:
    """Invoices newest first (ids are time-ordered), `limit` after the cursor's id; `overdue`: open
    and past their due date."""
    stmt = select(Invoice).order_by(Invoice.id.desc()).limit(limit)
    if organization_id is not None:
        stmt = stmt.where(Invoice.buyer_organization_id == organization_id)
    if overdue:
        stmt = stmt.where(Invoice.status == InvoiceStatus.OPEN.value, Invoice.due_at < clock.now())
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    if after is not None:
        stmt = stmt.where(Invoice.id < after)
    return list(session.scalars(stmt))


def is_overdue(invoice: Invoice, now: datetime | None = None) -> bool:
    return invoice.status == InvoiceStatus.OPEN.value and invoice.due_at < (now or clock.now())


_EXPECTED_KINDS: dict[str, list[str]] = {
    InvoiceStatus.OPEN.value: [ISSUED], InvoiceStatus.PAID.value: [ISSUED, PAID],
    InvoiceStatus.VOID.value: [ISSUED, VOIDED],
}


def receivables_match_open_invoices(session: Session) -> Iterable[AuditFinding]:
    """Each organization's receivable (per currency) is minus the sum of its open invoices, the
    platform's `invoiced` their sum, and every invoice has exactly the postings of its status
    (issued; issued and paid; issued and voided), with a paid invoice's order paid."""
    name = "receivables_match_open_invoices"
    posted: dict[str, list[str]] = defaultdict(list)
    for kind, reference in session.execute(select(JournalTransaction.kind, JournalTransaction.reference_id).where(
            JournalTransaction.kind.in_((ISSUED, PAID, VOIDED)))):
        posted[reference].append(kind)
    owed: dict[tuple[uuid.UUID | None, str], int] = defaultdict(int)
    rows: Any = session.execute(select(Invoice.id, Invoice.status, Invoice.amount, Invoice.currency,
                                       Invoice.buyer_organization_id, Order.status, Order.total_amount)
                                .join(Order, Order.id == Invoice.order_id))
    for invoice_id, status, amount, currency, organization_id, order_status, total in rows:
        kinds = sorted(posted.pop(str(invoice_id), []))
        if kinds != sorted(_EXPECTED_KINDS.get(status, [])):
            yield AuditFinding(name, f"invoice {invoice_id} is {status} but posted {kinds}")
        if amount != total:
            yield AuditFinding(name, f"invoice {invoice_id} is for {amount}, its order for {total}")
        if status == InvoiceStatus.PAID.value and order_status != OrderStatus.PAID.value:
            yield AuditFinding(name, f"invoice {invoice_id} is paid but its order is {order_status}")
        if status == InvoiceStatus.OPEN.value:
            owed[(organization_id, currency)] += amount
    for reference, kinds in posted.items():
        yield AuditFinding(name, f"{sorted(kinds)} name no invoice ({reference})")
    booked: dict[tuple[uuid.UUID | None, str], int] = {
        (owner, currency): int(total) for owner, currency, total in session.execute(
            select(JournalEntry.owner_id, JournalEntry.currency, func.sum(JournalEntry.amount))
            .where(JournalEntry.owner_type == BUYER_ORG, JournalEntry.purpose == RECEIVABLE)
            .group_by(JournalEntry.owner_id, JournalEntry.currency))}
    for key in set(owed) | set(booked):
        if booked.get(key, 0) != -owed.get(key, 0):
            yield AuditFinding(name, f"organization {key[0]} owes {booked.get(key, 0)} {key[1]} in the journal, "
                                     f"but its open invoices sum to {owed.get(key, 0)}")
    invoiced = dict(session.execute(
        select(JournalEntry.currency, func.sum(JournalEntry.amount))
        .where(JournalEntry.owner_type == PLATFORM, JournalEntry.purpose == INVOICED)
        .group_by(JournalEntry.currency)).all())
    open_per_currency: dict[str, int] = defaultdict(int)
    for (_, currency), amount in owed.items():
        open_per_currency[currency] += amount
    for currency in set(invoiced) | set(open_per_currency):
        if int(invoiced.get(currency) or 0) != open_per_currency.get(currency, 0):
            yield AuditFinding(name, f"platform invoiced {invoiced.get(currency)} {currency}, open invoices "
                                     f"sum to {open_per_currency.get(currency, 0)}")
