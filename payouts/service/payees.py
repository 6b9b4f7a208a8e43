"""Payees: the sellers and affiliates a payout can pay, and whether it may pay them now.

Payees live in other domains (catalog, affiliates); this module is the one place payouts reads
them, with the same fields on both (`status`, `payout_status`, `stripe_account_id`,
`bank_reference`, `webhook_url`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import ARRAY, ColumnElement, Uuid, any_, bindparam, select
from sqlalchemy.orm import Session

from affiliates.models import Affiliate
from catalog.models import Seller
from kernel.ledger import AFFILIATE, SELLER
from kernel.pgsql import in_list, is_postgres
from payouts.models import PayoutHold

PayeeKey = tuple[str, uuid.UUID]  # (owner_type, owner_id), the ledger's account owner
PAYEE_TYPES = (SELLER, AFFILIATE)
PAYOUTS_ENABLED = "payouts_enabled"
APPROVED = "approved"


class Payee(NamedTuple):
    """A payee as a payout sees it (a tuple: a run loads thousands per chunk)."""

    owner_type: str
    owner_id: uuid.UUID
    name: str | None
    status: str | None  # None: no seller / affiliate with this id
    payout_status: str | None
    stripe_account_id: str | None
    bank_reference: str | None
    webhook_url: str | None
    hold_reason: str | None = None  # an operator's active payout hold (payouts/service/holds.py)

    @property
    def key(self) -> PayeeKey:
        return (self.owner_type, self.owner_id)

    def destination(self, rail: str) -> str | None:
        """Where the rail sends the money: the connected account (Stripe) or the bank reference."""
        return self.stripe_account_id if rail == "stripe" else self.bank_reference

    def blocked_reason(self, rail: str) -> str | None:
        """Why this payee cannot be paid now on `rail`, or None if it can."""
        if self.status is None:
            return f"unknown {self.owner_type}"
        if self.hold_reason is not None:
            return f"payouts held by the operator: {self.hold_reason}"
        if self.status != APPROVED:
            return f"{self.owner_type} is {self.status}"
        if self.payout_status != PAYOUTS_ENABLED:
            return f"payout account is {self.payout_status or 'not set up'}, not payouts_enabled"
        if not self.destination(rail):
            return "no Stripe connected account" if rail == "stripe" else "no bank reference"
        return None


def among(column: Any, ids: Sequence[uuid.UUID], postgres: bool) -> ColumnElement[bool]:
    """`column IN ids`; on PostgreSQL `column = ANY(array)`: one parameter for a run chunk's
    thousands of ids (an IN list's placeholders cost psycopg and SQLAlchemy time per id)."""
    if postgres:
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Uuid())))  # type: ignore[no-any-return]
    return column.in_(ids)  # type: ignore[no-any-return]


def unknown_payee(key: PayeeKey) -> Payee:
    return Payee(key[0], key[1], None, None, None, None, None, None)


def load_payees(session: Session, keys: Iterable[PayeeKey]) -> dict[PayeeKey, Payee]:
    """Every payee of `keys` in two queries (one per type); missing ones come back as unknown."""
    wanted = list(keys)
    found: dict[PayeeKey, Payee] = {}
    postgres = is_postgres(session)
    for owner_type, model in ((SELLER, Seller), (AFFILIATE, Affiliate)):
        ids = [owner_id for kind, owner_id in wanted if kind == owner_type]
        # PostgreSQL: one array parameter for any number; elsewhere below the bound-parameter limit.
        step = max(len(ids), 1) if postgres else 1000
        for start in range(0, len(ids), step):
            rows = session.execute(
                select(model.id, model.name, model.status, model.payout_status, model.stripe_account_id,
                       model.bank_reference, model.webhook_url).where(in_list(model.id, "ids", postgres)),
                {"ids": ids[start:start + step]},
            ).all()
            for row in rows:
                found[(owner_type, row[0])] = Payee(owner_type, *row)
    for (owner_type, owner_id), reason in active_holds(session, found.keys()).items():
        found[(owner_type, owner_id)] = found[(owner_type, owner_id)]._replace(hold_reason=reason)
    return {key: found.get(key) or unknown_payee(key) for key in wanted}


def active_holds(session: Session, keys: Iterable[PayeeKey]) -> dict[PayeeKey, str]:
    """{payee: reason} of the active payout holds among `keys` (holds are few: one query)."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = session.execute(
        select(PayoutHold.owner_type, PayoutHold.owner_id, PayoutHold.reason).where(PayoutHold.released_at.is_(None))
    ).all()
    return {(t, i): reason for t, i, reason in rows if (t, i) in wanted}


def payee_model(owner_type: str) -> type[Seller] | type[Affiliate]:
    """The table a payee of `owner_type` lives in (the ledger's owner types seller / affiliate)."""
    return Seller if owner_type == SELLER else Affiliate

