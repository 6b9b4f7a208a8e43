"""referral_click_daily.hits and .bot_hits: raw hits kept apart from counted (unique, human) clicks

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('referral_click_daily') as batch:
        # Every request on the link (repeats and bots included) and those flagged as automated;
        # `clicks` keeps counting unique human visitors only.
        batch.add_column(sa.Column('hits', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('bot_hits', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('referral_click_daily') as batch:
        batch.drop_column('bot_hits')
        batch.drop_column('hits')
