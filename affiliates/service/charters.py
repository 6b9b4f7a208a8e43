"""The data-sharing charter of a seller program: versioned, accepted by each affiliate.

A charter's `terms` say, for the buyers an affiliate brings to the seller's program:

- `seller_contact_purposes`: the seller's team sees the buyer's email and phone only when the
  buyer consented to one of these purposes (kernel.consents). Shipping details (name, address) are
  the seller's for fulfilment always, charter or not.
- `affiliate_contact_purposes`: the affiliate sees its buyers' email and phone unmasked only when
  the buyer consented to one of these; masked otherwise (the default: none).
- `affiliate_sees_name`: the affiliate sees its buyers' names (default: masked).
- `share_relationship_contacts`: whether contacts the two teams record at a buyer organization are
  shared between them.

The seller publishes a new version (`publish`); an affiliate accepts a version when it joins
(`POST /v1/programs/{id}/memberships` with `accept_charter_version`) and accepts each new version
again (`accept`). What governs an order is the latest version the affiliate has accepted; before
any, the platform's default terms (`DEFAULT_TERMS`, as restrictive as the charter allows). Every
acceptance is kept. The one policy that applies the terms is orders.service.buyer_policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from affiliates.errors import CharterNotAccepted, CharterNotFound
from affiliates.models import CharterAcceptance, Program, ProgramCharter
from affiliates.service.programs import get_program, owned_program
from kernel import consents
from kernel.auth import Principal
from kernel.clock import clock


@dataclass(frozen=True, slots=True)
class Terms:
    seller_contact_purposes: tuple[str, ...] = ("partner_contact",)
    affiliate_contact_purposes: tuple[str, ...] = ()
    affiliate_sees_name: bool = False
    share_relationship_contacts: bool = False

    @classmethod
    def of(cls, data: dict[str, Any]) -> Terms:
        sellers = tuple(str(p) for p in data.get("seller_contact_purposes") or ())
        affiliates = tuple(str(p) for p in data.get("affiliate_contact_purposes") or ())
        consents.check_names([*sellers, *affiliates])
        return cls(sellers, affiliates, bool(data.get("affiliate_sees_name", False)),
                   bool(data.get("share_relationship_contacts", False)))

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


DEFAULT_TERMS = Terms()


def publish(session: Session, principal: Principal, program_id: uuid.UUID, terms: Terms, text: str) -> ProgramCharter:
    """A new version of the program's charter (the program's row lock orders concurrent ones)."""
    owned_program(session, principal, program_id, lock=True)
    latest = session.scalar(select(func.max(ProgramCharter.version)).where(ProgramCharter.program_id == program_id))
    charter = ProgramCharter(program_id=program_id, version=(latest or 0) + 1, terms=terms.as_json(), text=text,
                             created_at=clock.now())
    session.add(charter)
    session.flush()
    return charter


def versions(session: Session, program_id: uuid.UUID) -> list[ProgramCharter]:
    get_program(session, program_id)
    return list(session.scalars(select(ProgramCharter).where(ProgramCharter.program_id == program_id)
                                .order_by(ProgramCharter.version)))


def current(session: Session, program_id: uuid.UUID) -> ProgramCharter | None:
    return session.scalars(select(ProgramCharter).where(ProgramCharter.program_id == program_id)
                           .order_by(ProgramCharter.version.desc()).limit(1)).first()


def accept(session: Session, affiliate_id: uuid.UUID, program_id: uuid.UUID, version: int) -> CharterAcceptance:
    """The affiliate accepts `version` of the program's charter (the current one; accepting again
    is a no-op that returns the first acceptance)."""
    charter = session.scalars(select(ProgramCharter).where(ProgramCharter.program_id == program_id,
                                                           ProgramCharter.version == version)).first()
    if charter is None:
        raise CharterNotFound(f"program {program_id} has no charter version {version}")
    latest = current(session, program_id)
    if latest is not None and latest.version != version:
        raise CharterNotAccepted(f"version {version} is not the program's current charter (version {latest.version})")
    found = session.scalars(select(CharterAcceptance).where(CharterAcceptance.charter_id == charter.id,
                                                           CharterAcceptance.affiliate_id == affiliate_id)).first()
    if found is not None:
        return found
    row = CharterAcceptance(charter_id=charter.id, program_id=program_id, affiliate_id=affiliate_id,
                            version=version, accepted_at=clock.now())
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a twin request accepted it meanwhile
        found = session.scalars(select(CharterAcceptance).where(CharterAcceptance.charter_id == charter.id,
                                                               CharterAcceptance.affiliate_id == affiliate_id)).one()
        return found
    return row


def require_on_joining(session: Session, affiliate_id: uuid.UUID, program_id: uuid.UUID, version: int | None) -> None:
    """Joining a program that has a charter accepts its current version (422 without it)."""
    latest = current(session, program_id)
    if latest is None:
        return
    if version is None:
        raise CharterNotAccepted(f"this program has a data-sharing charter (version {latest.version}): join with "
                                 f"accept_charter_version={latest.version} (GET /v1/programs/{program_id}/charters)")
    accept(session, affiliate_id, program_id, version)


def acceptances(session: Session, affiliate_id: uuid.UUID) -> list[CharterAcceptance]:
    return list(session.scalars(select(CharterAcceptance).where(CharterAcceptance.affiliate_id == affiliate_id)
                                .order_by(CharterAcceptance.accepted_at, CharterAcceptance.id)))


def accepted_terms(
    session: Session, affiliate_id: uuid.UUID, seller_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Terms]:
    """Per seller: the terms of the latest charter version `affiliate_id` accepted in the seller's
    program (DEFAULT_TERMS when it accepted none)."""
    sellers = list(set(seller_ids))
    out = dict.fromkeys(sellers, DEFAULT_TERMS)
    if not sellers:
        return out
    rows = session.execute(
        select(Program.seller_id, ProgramCharter.version, ProgramCharter.terms)
        .join(ProgramCharter, ProgramCharter.program_id == Program.id)
        .join(CharterAcceptance, CharterAcceptance.charter_id == ProgramCharter.id)
        .where(Program.seller_id.in_(sellers), CharterAcceptance.affiliate_id == affiliate_id)
        .order_by(ProgramCharter.version)
    ).all()
    for row in rows:  # ascending versions: the latest accepted wins
        out[row.seller_id] = Terms.of(row.terms)
    return out
