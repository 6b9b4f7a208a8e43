"""refunds.failure_reason: why a refund failed at the rail, for operators to settle

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('refunds') as batch:
        batch.add_column(sa.Column('failure_reason', sa.Text(), nullable=True))
        batch.create_index('ix_refunds_status', ['status'])


def downgrade() -> None:
    with op.batch_alter_table('refunds') as batch:
        batch.drop_index('ix_refunds_status')
        batch.drop_column('failure_reason')
