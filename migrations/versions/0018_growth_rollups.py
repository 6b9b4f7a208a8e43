"""Growth rollups (issue 16): growth_daily (per day, group and currency: orders, new and
returning customers, revenue net of refunds, commissions net of clawbacks, fees, orders by
source), growth_customers (each buyer's first and last day per group), growth_traffic_daily
(per day and group: unique storefront visits, product views, carts started, checkouts begun).

The rollups start empty: `marketplace growth rebuild` fills them from the orders of an existing
installation (and checks them against the journal).

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTS = ('orders', 'new_customers', 'returning_customers', 'revenue', 'refunded', 'commissions', 'fees',
           'orders_via_storefront', 'orders_via_click', 'orders_via_coupon')
_TRAFFIC = ('visits', 'product_views', 'carts_started', 'checkouts_begun')


def upgrade() -> None:
    op.create_table(
        'growth_daily',
        sa.Column('group_type', sa.String(length=16), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('group_id', sa.Uuid(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in _COUNTS],
        sa.PrimaryKeyConstraint('group_type', 'day', 'group_id', 'currency', name=op.f('pk_growth_daily')),
    )
    op.create_index('ix_growth_daily_group', 'growth_daily', ['group_type', 'group_id', 'day'])
    op.create_table(
        'growth_customers',
        sa.Column('group_type', sa.String(length=16), nullable=False),
        sa.Column('group_id', sa.Uuid(), nullable=False),
        sa.Column('buyer_email', sa.String(length=254), nullable=False),
        sa.Column('first_day', sa.Date(), nullable=False),
        sa.Column('last_day', sa.Date(), nullable=False),
        sa.Column('second_day', sa.Date(), nullable=True),
        sa.Column('seen_before', sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint('group_type', 'group_id', 'buyer_email', name=op.f('pk_growth_customers')),
    )
    op.create_index('ix_growth_customers_last_day', 'growth_customers', ['group_type', 'last_day'])
    op.create_table(
        'growth_traffic_daily',
        sa.Column('group_type', sa.String(length=16), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('group_id', sa.Uuid(), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in _TRAFFIC],
        sa.PrimaryKeyConstraint('group_type', 'day', 'group_id', name=op.f('pk_growth_traffic_daily')),
    )


def downgrade() -> None:
    op.drop_table('growth_traffic_daily')
    op.drop_index('ix_growth_customers_last_day', table_name='growth_customers')
    op.drop_table('growth_customers')
    op.drop_index('ix_growth_daily_group', table_name='growth_daily')
    op.drop_table('growth_daily')
