"""Taking money back from a paid payout: Stripe Transfer Reversals after a refund.

A refund reverses each share from the account it sits in. If the share was already paid out,
the payee's `available` balance goes negative: the platform refunded the buyer with money that
now sits in the payee's connected account. On the Stripe rail we take it back from there with a
Transfer Reversal of the payout that carried it, instead of waiting for the payee's next
earnings (which may never come). On the manual rail, or when Stripe refuses the reversal, the
balance stays negative and the next payout nets it (a payee with a negative balance is blocked
from payouts until then).

How much: only the payee's deficit (minus what pending recoveries already cover), so a payee
whose newer earnings cover the clawback is netted, not reversed. Which transfers: the payee's
paid Stripe payouts in that currency, newest first, up to what is left of each transfer.

Exactly once:
- Planning runs under a row lock on the payee (`FOR UPDATE`), and counts pending recoveries, so
  two planners never cover the same deficit twice.
- Each recovery is committed before the rail is called and is sent with the idempotency key
  `payout-recovery-{id}` under its own row lock, so a retry after a crash or timeout gets the
  same reversal back from Stripe.
- The journal transaction `payout.recovered` (platform `paid_out` -X, payee `available` +X)
  is written once per recovery (UNIQUE(kind, reference)), in the transaction that marks it
  recovered; `marketplace ledger audit` checks both agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel import ledger
from kernel.clock import clock
from kernel.db import session_scope
from kernel.ledger import AFFILIATE, AVAILABLE, PAID_OUT, PLATFORM, SELLER, Posting
from kernel.payment_rail import PaymentRailError
from kernel.runtime import Runtime
from payouts.models import (
    KIND_RECOVERED,
    RECOVERY_REFERENCE_TYPE,
    ItemStatus,
    PayoutItem,
    PayoutRecovery,
    RecoveryStatus,
)
from payouts.service.payees import payee_model

log = structlog.get_logger(__name__)

Account = tuple[str, uuid.UUID, str]  # (owner_type, owner_id, currency)


@dataclass
class RecoveryRun:
    planned: int = 0
    recovered: int = 0  # minor units, summed over currencies (a count of money, for logs)
    failed: int = 0
    retry: list[uuid.UUID] = field(default_factory=list)  # retryable rail errors

    def as_dict(self) -> dict[str, object]:
        return {"planned": self.planned, "recovered": self.recovered, "failed": self.failed,
                "retry": [str(i) for i in self.retry]}


def negative_accounts(session: Session, accounts: Iterable[Account] | None = None) -> list[tuple[Account, int]]:
    """Payees whose available balance is below zero (a clawback after a payout), with it."""
    if accounts is None:
        found = ledger.owner_balances(session, AVAILABLE, (SELLER, AFFILIATE))
        return [(key, amount) for key, amount in found.items() if amount < 0]
    wanted = list(accounts)
    if not wanted:
        return []
    found = ledger.owner_balances(session, AVAILABLE, (SELLER, AFFILIATE), owner_ids=[i for _, i, _ in wanted])
    return [(key, found[key]) for key in dict.fromkeys(wanted) if found.get(key, 0) < 0]


def _lock_payee(session: Session, owner_type: str, owner_id: uuid.UUID) -> None:
    model = payee_model(owner_type)
    session.execute(select(model.id).where(model.id == owner_id).with_for_update())


def plan(session: Session, account: Account, rail: str) -> list[uuid.UUID]:
    """Create the pending recoveries that cover the account's deficit from its paid payouts on
    `rail`; returns their ids (none if nothing is owed, or no paid transfer is left to reverse)."""
    owner_type, owner_id, currency = account
    _lock_payee(session, owner_type, owner_id)
    balance = ledger.balance_of(session, owner_type, owner_id, AVAILABLE, currency)
    pending = session.scalar(
        select(func.coalesce(func.sum(PayoutRecovery.amount), 0)).where(
            PayoutRecovery.owner_type == owner_type, PayoutRecovery.owner_id == owner_id,
            PayoutRecovery.currency == currency, PayoutRecovery.status == RecoveryStatus.PENDING,
        )
    ) or 0
    need = -balance - int(pending)
    if need <= 0:
        return []
    taken = dict(session.execute(
        select(PayoutRecovery.payout_item_id, func.sum(PayoutRecovery.amount))
        .where(PayoutRecovery.owner_type == owner_type, PayoutRecovery.owner_id == owner_id,
               PayoutRecovery.status != RecoveryStatus.FAILED)
        .group_by(PayoutRecovery.payout_item_id)
    ).all())
    items = session.scalars(
        select(PayoutItem).where(
            PayoutItem.owner_type == owner_type, PayoutItem.owner_id == owner_id, PayoutItem.currency == currency,
            PayoutItem.status == ItemStatus.PAID, PayoutItem.rail == rail,
        ).order_by(PayoutItem.settled_at.desc(), PayoutItem.id.desc())
    )
    created: list[uuid.UUID] = []
    for item in items:
        assert item.amount is not None and item.rail_reference is not None  # paid items have both
        amount = min(need, item.amount - int(taken.get(item.id, 0)))
        if amount <= 0:
            continue
        recovery = PayoutRecovery(
            payout_item_id=item.id, owner_type=owner_type, owner_id=owner_id, currency=currency,
            amount=amount, transfer_id=item.rail_reference, status=RecoveryStatus.PENDING.value, attempts=0,
        )
        session.add(recovery)
        session.flush()
        created.append(recovery.id)
        need -= amount
        if need == 0:
            break
    return created


def execute(runtime: Runtime, recovery_id: uuid.UUID) -> str:
    """Send one pending recovery to the rail and settle it; returns its status afterwards.
    Raises PaymentRailError when the rail's answer is retryable (nothing is settled then)."""
    with session_scope(runtime.sessions) as session:
        recovery = session.scalars(
            select(PayoutRecovery).where(PayoutRecovery.id == recovery_id).with_for_update(skip_locked=True)
        ).one_or_none()
        if recovery is None:
            return "locked"  # another worker holds it right now
        if recovery.status != RecoveryStatus.PENDING:
            return recovery.status
        try:
            reversal_id = runtime.rail.reverse_transfer(
                recovery.transfer_id, amount=recovery.amount, idempotency_key=recovery.idempotency_key,
            )
        except PaymentRailError as exc:
            if exc.retryable:
                raise
            recovery.attempts += 1
            recovery.status = RecoveryStatus.FAILED.value
            recovery.failure_reason = exc.message[:500]
            recovery.settled_at = clock.now()
            log.warning("payout_recovery_refused", recovery_id=str(recovery.id), reason=exc.message)
            return recovery.status
        recovery.attempts += 1
        recovery.status = RecoveryStatus.RECOVERED.value
        recovery.rail_reference = reversal_id
        recovery.settled_at = clock.now()
        source = (RECOVERY_REFERENCE_TYPE, recovery.id)
        ledger.post(
            session, kind=KIND_RECOVERED, reference_type=RECOVERY_REFERENCE_TYPE, reference_id=recovery.id,
            currency=recovery.currency, order_id=None, memo=f"reversal {reversal_id} of {recovery.transfer_id}",
            postings=[
                Posting(PLATFORM, None, PAID_OUT, -recovery.amount, *source),
                Posting(recovery.owner_type, recovery.owner_id, AVAILABLE, recovery.amount, *source),
            ],
        )
        return recovery.status


def recover(runtime: Runtime, accounts: Iterable[Account] | None = None) -> RecoveryRun:
    """Plan recoveries for the given accounts (None: every payee below zero) and send every
    pending one. Only the Stripe rail can take money back; elsewhere this does nothing."""
    run = RecoveryRun()
    if runtime.rail.name != "stripe":
        return run
    with session_scope(runtime.sessions) as session:
        owing = [account for account, _ in negative_accounts(session, accounts)]
    for account in owing:
        with session_scope(runtime.sessions) as session:  # one payee per transaction
            run.planned += len(plan(session, account, runtime.rail.name))
    with session_scope(runtime.sessions) as session:
        pending = session.execute(
            select(PayoutRecovery.id, PayoutRecovery.amount)
            .where(PayoutRecovery.status == RecoveryStatus.PENDING).order_by(PayoutRecovery.id)
        ).all()
    for recovery_id, amount in pending:
        try:
            status = execute(runtime, recovery_id)
        except PaymentRailError as exc:
            log.warning("payout_recovery_retry", recovery_id=str(recovery_id), error=exc.message)
            run.retry.append(recovery_id)
            continue
        if status == RecoveryStatus.FAILED:
            run.failed += 1
        elif status == RecoveryStatus.RECOVERED:
            run.recovered += amount  # a recovery's amount never changes once planned
    return run
