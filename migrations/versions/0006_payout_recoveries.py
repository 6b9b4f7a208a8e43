"""payout recoveries: transfer reversals for refunds that follow a paid payout

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kernel.db

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payout_recoveries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('payout_item_id', sa.Uuid(), nullable=False),
    sa.Column('owner_type', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('transfer_id', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('rail_reference', sa.String(length=100), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', kernel.db.UTCDateTime(), nullable=False),
    sa.Column('settled_at', kernel.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'recovered', 'failed')", name=op.f('ck_payout_recoveries_status_known')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payout_recoveries_amount_positive')),
    sa.CheckConstraint("status <> 'recovered' OR rail_reference IS NOT NULL",
                       name=op.f('ck_payout_recoveries_recovered_has_reference')),
    sa.ForeignKeyConstraint(['payout_item_id'], ['payout_items.id'],
                            name=op.f('fk_payout_recoveries_payout_item_id_payout_items')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_recoveries')),
    sa.UniqueConstraint('rail_reference', name=op.f('uq_payout_recoveries_rail_reference'))
    )
    op.create_index('ix_payout_recoveries_owner', 'payout_recoveries', ['owner_type', 'owner_id', 'currency'])
    op.create_index('ix_payout_recoveries_item', 'payout_recoveries', ['payout_item_id'])
    op.create_index('ix_payout_recoveries_status', 'payout_recoveries', ['status'])


def downgrade() -> None:
    op.drop_index('ix_payout_recoveries_status', table_name='payout_recoveries')
    op.drop_index('ix_payout_recoveries_item', table_name='payout_recoveries')
    op.drop_index('ix_payout_recoveries_owner', table_name='payout_recoveries')
    op.drop_table('payout_recoveries')
