"""payout holds: an operator blocks a flagged payee's payouts until the hold is lifted

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kernel.db

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payout_holds',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_type', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', kernel.db.UTCDateTime(), nullable=False),
    sa.Column('released_by', sa.String(length=60), nullable=True),
    sa.Column('released_at', kernel.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("owner_type IN ('seller', 'affiliate')", name=op.f('ck_payout_holds_owner_type_payee')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_holds'))
    )
    op.create_index('uq_payout_holds_active', 'payout_holds', ['owner_type', 'owner_id'], unique=True,
                    sqlite_where=sa.text('released_at IS NULL'), postgresql_where=sa.text('released_at IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_payout_holds_active', table_name='payout_holds')
    op.drop_table('payout_holds')
