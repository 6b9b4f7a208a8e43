"""Buyer organizations (issue 15): organizations that buy, with members in buying roles (people's
memberships of kind "buyer"), a spending limit per member, shipping addresses, and orders that
wait for an approver

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kernel.db

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'buyer_organizations',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('created_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer_organizations')),
    )
    op.create_table(
        'buyer_spending_limits',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('organization_id', sa.Uuid(), nullable=False),
        sa.Column('person_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['buyer_organizations.id'],
                                name=op.f('fk_buyer_spending_limits_organization_id_buyer_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer_spending_limits')),
        sa.UniqueConstraint('organization_id', 'person_id', name=op.f('uq_buyer_spending_limits_organization_id_person_id')),
    )
    op.create_table(
        'buyer_addresses',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('organization_id', sa.Uuid(), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=False),
        sa.Column('address', sa.JSON(), nullable=False),
        sa.Column('created_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['buyer_organizations.id'],
                                name=op.f('fk_buyer_addresses_organization_id_buyer_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer_addresses')),
    )
    op.create_index(op.f('ix_buyer_addresses_organization_id'), 'buyer_addresses', ['organization_id'])
    op.create_table(
        'order_approvals',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('decision', sa.String(length=16), nullable=False),
        sa.Column('person_id', sa.Uuid(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('decided_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_approvals_order_id_orders')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_order_approvals')),
        sa.UniqueConstraint('order_id', name=op.f('uq_order_approvals_order_id')),
    )
    with op.batch_alter_table('orders') as batch:
        batch.add_column(sa.Column('buyer_organization_id', sa.Uuid(), nullable=True))
        batch.add_column(sa.Column('placed_by_person_id', sa.Uuid(), nullable=True))
        batch.create_index(batch.f('ix_orders_buyer_organization_id'), ['buyer_organization_id'])
        batch.create_foreign_key(batch.f('fk_orders_buyer_organization_id_buyer_organizations'),
                                 'buyer_organizations', ['buyer_organization_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('orders') as batch:
        batch.drop_constraint('fk_orders_buyer_organization_id_buyer_organizations', type_='foreignkey')
        batch.drop_index('ix_orders_buyer_organization_id')
        batch.drop_column('placed_by_person_id')
        batch.drop_column('buyer_organization_id')
    op.drop_table('order_approvals')
    op.drop_index(op.f('ix_buyer_addresses_organization_id'), table_name='buyer_addresses')
    op.drop_table('buyer_addresses')
    op.drop_table('buyer_spending_limits')
    op.drop_table('buyer_organizations')
