"""Order links and consents (issue 15): every order's secret status link, the buyer's consents per
purpose, the buyer's phone, and the history of consents changed after checkout

- orders.status_token_hash: SHA-256 of the order's status-link token (unique; NULL for orders
  placed before this revision, which have no link).
- orders.consents: what the buyer answered per purpose at checkout (NULL: nothing, the defaults).
- orders.buyer_phone: optional at checkout.
- order_consent_changes: a consent withdrawn (or given) after checkout.

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kernel.db

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('buyer_phone', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('status_token_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('consents', sa.JSON(), nullable=True))
        batch.create_unique_constraint('uq_orders_status_token_hash', ['status_token_hash'])
    op.create_table(
        'order_consent_changes',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('purpose', sa.String(length=40), nullable=False),
        sa.Column('granted', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('created_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_consent_changes_order_id_orders')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_order_consent_changes')),
    )
    op.create_index(op.f('ix_order_consent_changes_order_id'), 'order_consent_changes', ['order_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_order_consent_changes_order_id'), table_name='order_consent_changes')
    op.drop_table('order_consent_changes')
    with op.batch_alter_table('orders') as batch:
        batch.drop_constraint('uq_orders_status_token_hash', type_='unique')
        batch.drop_column('consents')
        batch.drop_column('status_token_hash')
        batch.drop_column('buyer_phone')
