"""Buyer organizations, the data-sharing charter and the buyer-data access log (issue 15)

- buyer_organizations, buyer_spending_limits, buyer_addresses: organizations that buy (their people
  are memberships of kind "buyer"), a spending limit per member, shipping addresses;
- order_approvals and orders.buyer_organization_id / placed_by_person_id: orders that wait for an
  approver, and the one decision on each;
- program_charters, charter_acceptances: each seller program's versioned data-sharing charter and
  who accepted which version;
- buyer_data_access: every read of buyer contact data.

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
    op.create_table(
        'buyer_data_access',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('order_id', sa.Uuid(), nullable=False),
        sa.Column('buyer_organization_id', sa.Uuid(), nullable=True),
        sa.Column('viewer_kind', sa.String(length=16), nullable=False),
        sa.Column('viewer_organization_id', sa.Uuid(), nullable=False),
        sa.Column('viewer_role', sa.String(length=16), nullable=False),
        sa.Column('person_id', sa.Uuid(), nullable=True),
        sa.Column('api_key_id', sa.Uuid(), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('purpose', sa.String(length=40), nullable=False),
        sa.Column('at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer_data_access')),
    )
    for column in ('order_id', 'buyer_organization_id', 'viewer_organization_id'):
        op.create_index(op.f(f'ix_buyer_data_access_{column}'), 'buyer_data_access', [column])
    op.create_table(
        'program_charters',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('terms', sa.JSON(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['program_id'], ['affiliate_programs.id'],
                                name=op.f('fk_program_charters_program_id_affiliate_programs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_program_charters')),
        sa.UniqueConstraint('program_id', 'version', name=op.f('uq_program_charters_program_id_version')),
    )
    op.create_table(
        'charter_acceptances',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('charter_id', sa.Uuid(), nullable=False),
        sa.Column('program_id', sa.Uuid(), nullable=False),
        sa.Column('affiliate_id', sa.Uuid(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('accepted_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['charter_id'], ['program_charters.id'],
                                name=op.f('fk_charter_acceptances_charter_id_program_charters')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_charter_acceptances')),
        sa.UniqueConstraint('charter_id', 'affiliate_id', name=op.f('uq_charter_acceptances_charter_id_affiliate_id')),
    )
    op.create_index(op.f('ix_charter_acceptances_program_id'), 'charter_acceptances', ['program_id'])
    op.create_index(op.f('ix_charter_acceptances_affiliate_id'), 'charter_acceptances', ['affiliate_id'])
    op.create_table(
        'relationship_contacts',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('buyer_organization_id', sa.Uuid(), nullable=False),
        sa.Column('owner_kind', sa.String(length=16), nullable=False),
        sa.Column('owner_id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=True),
        sa.Column('buying_role', sa.String(length=20), nullable=False),
        sa.Column('influence', sa.Integer(), nullable=False),
        sa.Column('reports_to_id', sa.Uuid(), nullable=True),
        sa.Column('notes', sa.Text(), nullable=False),
        sa.Column('relationship_owner_id', sa.Uuid(), nullable=True),
        sa.Column('created_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['buyer_organization_id'], ['buyer_organizations.id'],
                                name=op.f('fk_relationship_contacts_buyer_organization_id_buyer_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_relationship_contacts')),
    )
    op.create_index(op.f('ix_relationship_contacts_buyer_organization_id'), 'relationship_contacts',
                    ['buyer_organization_id'])
    op.create_index(op.f('ix_relationship_contacts_owner_id'), 'relationship_contacts', ['owner_id'])
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
    op.drop_table('relationship_contacts')
    op.drop_table('charter_acceptances')
    op.drop_table('program_charters')
    op.drop_table('buyer_data_access')
    op.drop_table('order_approvals')
    op.drop_index(op.f('ix_buyer_addresses_organization_id'), table_name='buyer_addresses')
    op.drop_table('buyer_addresses')
    op.drop_table('buyer_spending_limits')
    op.drop_table('buyer_organizations')
