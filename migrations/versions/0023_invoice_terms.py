"""Invoice terms for trusted buyer organizations (issue 15)

- buyer_organizations.invoice_terms_days: an operator trusts the organization with terms (net N
  days), or null (none: its orders are paid at once like everyone's);
- invoices: one per order placed on account (manual rail): its amount, due date and, once, its
  payment (the ledger carries the receivable from issue to payment: orders.service.invoices).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kernel.db

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('buyer_organizations') as batch:
        batch.add_column(sa.Column('invoice_terms_days', sa.Integer(), nullable=True))
    op.create_table(
        'invoices',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('buyer_organization_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('issued_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('due_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('paid_at', kernel.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('payment_reference', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_invoices_order_id_orders')),
        sa.ForeignKeyConstraint(['buyer_organization_id'], ['buyer_organizations.id'],
                                name=op.f('fk_invoices_buyer_organization_id_buyer_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
        sa.UniqueConstraint('order_id', name=op.f('uq_invoices_order_id')),
    )
    op.create_index(op.f('ix_invoices_buyer_organization_id'), 'invoices', ['buyer_organization_id'])
    op.create_index(op.f('ix_invoices_status_due_at'), 'invoices', ['status', 'due_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_invoices_status_due_at'), table_name='invoices')
    op.drop_index(op.f('ix_invoices_buyer_organization_id'), table_name='invoices')
    op.drop_table('invoices')
    with op.batch_alter_table('buyer_organizations') as batch:
        batch.drop_column('invoice_terms_days')
