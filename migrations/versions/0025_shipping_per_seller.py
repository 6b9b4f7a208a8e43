"""Shipping per seller (issue 17): profiles with zones and rates, the chosen rate per sub-order

- shipping_profiles: a seller's profile (currency, zones: ISO country codes "US" or country and
  region "US-CA"); shipping_rates: its rates (flat per sub-order, per item, weight band), each
  optionally free once the seller's part of the cart reaches an amount.
- sellers.ships_with_profiles: true while the seller has an active profile; checkout then needs a
  rate for the seller's part (read with the cart's variants: no extra statement).
- variants.weight_grams: what weight bands weigh (0 when not given).
- orders.shipping_amount, sub_orders.shipping_amount / refunded_shipping_amount / shipping_rate_id
  / shipping_method, refunds.shipping_amount: the shipping charged and given back.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kernel.db

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'shipping_profiles',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('seller_id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('zones', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['seller_id'], ['sellers.id'], name=op.f('fk_shipping_profiles_seller_id_sellers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shipping_profiles')),
    )
    op.create_index(op.f('ix_shipping_profiles_seller_id'), 'shipping_profiles', ['seller_id'])
    op.create_table(
        'shipping_rates',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('profile_id', sa.Uuid(), nullable=False),
        sa.Column('seller_id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('min_weight_grams', sa.Integer(), nullable=True),
        sa.Column('max_weight_grams', sa.Integer(), nullable=True),
        sa.Column('free_over_amount', sa.BigInteger(), nullable=True),
        sa.Column('created_at', kernel.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('amount >= 0', name=op.f('ck_shipping_rates_amount_not_negative')),
        sa.ForeignKeyConstraint(['profile_id'], ['shipping_profiles.id'],
                                name=op.f('fk_shipping_rates_profile_id_shipping_profiles')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_shipping_rates')),
    )
    op.create_index(op.f('ix_shipping_rates_profile_id'), 'shipping_rates', ['profile_id'])
    with op.batch_alter_table('sellers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ships_with_profiles', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('weight_grams', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shipping_amount', sa.BigInteger(), nullable=False, server_default='0'))
    with op.batch_alter_table('sub_orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shipping_amount', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('refunded_shipping_amount', sa.BigInteger(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('shipping_rate_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('shipping_method', sa.String(length=100), nullable=True))
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shipping_amount', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_column('shipping_amount')
    with op.batch_alter_table('sub_orders', schema=None) as batch_op:
        batch_op.drop_column('shipping_method')
        batch_op.drop_column('shipping_rate_id')
        batch_op.drop_column('refunded_shipping_amount')
        batch_op.drop_column('shipping_amount')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('shipping_amount')
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_column('weight_grams')
    with op.batch_alter_table('sellers', schema=None) as batch_op:
        batch_op.drop_column('ships_with_profiles')
    op.drop_index(op.f('ix_shipping_rates_profile_id'), table_name='shipping_rates')
    op.drop_table('shipping_rates')
    op.drop_index(op.f('ix_shipping_profiles_seller_id'), table_name='shipping_profiles')
    op.drop_table('shipping_profiles')
