"""Quotas and partner alarms (issue 16): monthly targets per affiliate in a program, or per
program (orders, revenue, new customers), a plan version's `quota_bonus` paying past an
affiliate's quota; partner_alarms, opened once by the scheduled health evaluation.

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
    op.create_table(
        'partner_alarms',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('rule', sa.String(length=32), nullable=False),
        sa.Column('affiliate_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('open_key', sa.String(length=100), nullable=True),
        sa.Column('figures', sa.JSON(), nullable=False),
        sa.Column('resolved_at', sa.DateTime(), nullable=True),
        sa.Column('resolution_note', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_alarms')),
        sa.UniqueConstraint('open_key', name=op.f('uq_partner_alarms_open_key')),
    )
    op.create_index(op.f('ix_partner_alarms_affiliate_id'), 'partner_alarms', ['affiliate_id'])
    op.create_index(op.f('ix_partner_alarms_status'), 'partner_alarms', ['status'])


def downgrade() -> None:
    op.drop_index(op.f('ix_partner_alarms_status'), table_name='partner_alarms')
    op.drop_index(op.f('ix_partner_alarms_affiliate_id'), table_name='partner_alarms')
    op.drop_table('partner_alarms')
    op.drop_index('ix_quotas_engine', table_name='quotas')
    op.drop_table('quotas')
