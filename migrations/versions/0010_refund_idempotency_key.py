"""refunds.idempotency_key: a retried refund request returns the refund it made, once per order

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('refunds') as batch:
        batch.add_column(sa.Column('idempotency_key', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('request_hash', sa.String(length=64), nullable=True))
        # NULLs never collide: refunds made without a key (and by the system) are not limited.
        batch.create_unique_constraint('uq_refunds_order_id_idempotency_key', ['order_id', 'idempotency_key'])


def downgrade() -> None:
    with op.batch_alter_table('refunds') as batch:
        batch.drop_constraint('uq_refunds_order_id_idempotency_key', type_='unique')
        batch.drop_column('request_hash')
        batch.drop_column('idempotency_key')
