"""Secrets generated once per installation and kept in its database.

Why: a secret with a default value in the code is public, and one derived from it is too (every
payee's webhook signing secret was an HMAC of the public development value and the payee's
public id, so anyone could forge `payout.paid` to any seller). Without WEBHOOK_SIGNING_SECRET the
platform now signs with a random secret this installation generated; two installations never
share it, and every process of one installation (API servers, workers, CLI) reads the same row.

Created on first use, race-free: the INSERT runs in a savepoint, and a process that loses the race
to another (the primary key refuses the second row) reads the winner's row instead.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.clock import clock
from kernel.db import Base
from kernel.settings import Settings

WEBHOOK_SIGNING = "webhook_signing"
VISITOR_HASH = "visitor_hash"  # referral visitors' fingerprints (affiliates.service.visitors)


class InstallationSecret(Base):
    __tablename__ = "installation_secrets"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=lambda: clock.now())


def installation_secret(session: Session, name: str) -> str:
    """The installation's secret called `name`, generated (256 random bits) on first use."""
    found = session.scalar(select(InstallationSecret.value).where(InstallationSecret.name == name))
    if found is not None:
        return found
    value = f"whsec_{secrets.token_hex(32)}"
    try:
        with session.begin_nested():
            session.add(InstallationSecret(name=name, value=value))
    except IntegrityError:  # another process created it first: use theirs
        winner = session.scalar(select(InstallationSecret.value).where(InstallationSecret.name == name))
        assert winner is not None
        return winner
    return value


def webhook_signing_secret(session: Session, settings: Settings) -> str:
    """The platform secret payees' webhook signing secrets derive from: WEBHOOK_SIGNING_SECRET
    when set, else this installation's own."""
    if settings.webhook_signing_secret is not None:
        return settings.webhook_signing_secret.get_secret_value()
    return installation_secret(session, WEBHOOK_SIGNING)
