"""Quotas (issue 16): monthly targets per affiliate in a program, or per program (orders,
revenue, new customers); a plan version's `quota_bonus` pays past an affiliate's quota.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'quotas',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('affiliate_id', sa.Uuid(), nullable=True),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('metric', sa.String(length=16), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('target', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['affiliate_id'], ['affiliates.id'], name=op.f('fk_quotas_affiliate_id_affiliates')),
        sa.ForeignKeyConstraint(['program_id'], ['affiliate_programs.id'],
                                name=op.f('fk_quotas_program_id_affiliate_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_quotas')),
        sa.UniqueConstraint('program_id', 'affiliate_id', 'month', 'metric', name='uq_quotas_target'),
    )
    op.create_index('ix_quotas_engine', 'quotas', ['program_id', 'affiliate_id', 'month'])


def downgrade() -> None:
    op.drop_index('ix_quotas_engine', table_name='quotas')
    op.drop_table('quotas')
