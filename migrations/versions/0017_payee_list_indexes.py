"""Per-payee lists read their own rows in key order (issue 18)

A payee's list, newest first (`WHERE seller_id = ? ORDER BY id DESC LIMIT n`, then `AND id < cursor`
for the next page), had only an index on the payee column: PostgreSQL either walked the primary
key backwards past every other payee's rows or read all of the payee's rows and sorted them, so a
page cost more as the platform (or the payee) grew. Each index below ends in `id`, so a page is a
backward range scan of that payee's keys: the same cost at any size.

- sub_orders (seller_id, id) replaces (seller_id): `GET /v1/sub-orders`;
- commissions (affiliate_id, id) replaces (affiliate_id), and (seller_id, id) is new (a seller
  lists the commissions it funds): `GET /v1/commissions`;
- payout_items (owner_type, owner_id, id) replaces (owner_type, owner_id): `GET /v1/payouts`.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_sub_orders_seller_id', table_name='sub_orders')
    op.create_index('ix_sub_orders_seller_page', 'sub_orders', ['seller_id', 'id'])
    op.drop_index('ix_commissions_affiliate_id', table_name='commissions')
    op.create_index('ix_commissions_affiliate_page', 'commissions', ['affiliate_id', 'id'])
    op.create_index('ix_commissions_seller_page', 'commissions', ['seller_id', 'id'])
    op.drop_index('ix_payout_items_owner', table_name='payout_items')
    op.create_index('ix_payout_items_owner', 'payout_items', ['owner_type', 'owner_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_payout_items_owner', table_name='payout_items')
    op.create_index('ix_payout_items_owner', 'payout_items', ['owner_type', 'owner_id'])
    op.drop_index('ix_commissions_seller_page', table_name='commissions')
    op.drop_index('ix_commissions_affiliate_page', table_name='commissions')
    op.create_index('ix_commissions_affiliate_id', 'commissions', ['affiliate_id'])
    op.drop_index('ix_sub_orders_seller_page', table_name='sub_orders')
    op.create_index('ix_sub_orders_seller_id', 'sub_orders', ['seller_id'])
