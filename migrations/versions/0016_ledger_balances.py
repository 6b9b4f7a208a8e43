"""Flat balances: `ledger_balances`, each account's balance and entry count (issue 18)

kernel.ledger.post_many keeps it in the posting transaction (the changes of a transaction are
added at its commit, in one upsert sorted by account; see kernel/ledger.py). An account has up to
8 rows (`shard`), so hot accounts do not serialise the commits that post to them; its balance is
the sum of its rows. The platform's accounts (owner NULL in the journal) have the nil UUID as
owner, so the key has no NULL.

The upgrade fills it from the existing journal (one grouped pass, every account in shard 0) and
the audit check `balance_table_matches_journal` compares the two from then on.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'ledger_balances',
        sa.Column('owner_type', sa.String(length=16), nullable=False),
        sa.Column('owner_id', sa.Uuid(), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('shard', sa.SmallInteger(), nullable=False),
        sa.Column('balance', sa.BigInteger(), nullable=False),
        sa.Column('entries', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('owner_type', 'owner_id', 'purpose', 'currency', 'shard',
                                name=op.f('pk_ledger_balances')),
    )
    op.create_index('ix_ledger_balances_purpose', 'ledger_balances',
                    ['purpose', 'currency', 'owner_type', 'owner_id', 'balance'])
    # The nil UUID as each dialect stores a Uuid column (PostgreSQL: uuid; SQLite: 32 hex digits).
    no_owner = ("'00000000-0000-0000-0000-000000000000'::uuid" if op.get_bind().dialect.name == 'postgresql'
                else "'00000000000000000000000000000000'")
    op.execute(
        "INSERT INTO ledger_balances (owner_type, owner_id, purpose, currency, shard, balance, entries) "
        f"SELECT owner_type, COALESCE(owner_id, {no_owner}), purpose, currency, 0, SUM(amount), COUNT(*) "
        "FROM journal_entries GROUP BY owner_type, COALESCE(owner_id, " + no_owner + "), purpose, currency"
    )


def downgrade() -> None:
    op.drop_index('ix_ledger_balances_purpose', table_name='ledger_balances')
    op.drop_table('ledger_balances')
