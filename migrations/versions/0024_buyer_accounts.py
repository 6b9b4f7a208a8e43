"""Buyer accounts (issue 15): a person who buys signs up and, once their email is confirmed through
the link mailed to it, sees every order placed with that email across storefronts.

- buyer_accounts: one per person; the emailed confirmation token's SHA-256 and expiry (cleared
  when used), and when the email was confirmed.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kernel.db

revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'buyer_accounts',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('person_id', sa.Uuid(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('token_expires_at', kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('confirmed_at', kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('created_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_buyer_accounts_person_id_people')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer_accounts')),
        sa.UniqueConstraint('person_id', name=op.f('uq_buyer_accounts_person_id')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_buyer_accounts_token_hash')),
    )


def downgrade() -> None:
    op.drop_table('buyer_accounts')
