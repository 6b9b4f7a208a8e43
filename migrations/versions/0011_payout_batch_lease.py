"""payout batch run lease: a live worker takes over a batch whose worker died (payouts/service/lease.py)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kernel.db

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('payout_batches') as batch:
        batch.add_column(sa.Column('lease_owner', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('lease_expires_at', kernel.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payout_batches') as batch:
        batch.drop_column('lease_expires_at')
        batch.drop_column('lease_owner')
