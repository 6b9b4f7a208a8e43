"""Indexes that lead with what balance and payout reads filter on (issue 18, flat as history grows)

- journal_entries (owner_type, owner_id, purpose, currency, amount) replaces the account index
  without `amount`: a payee's balance and the platform balances are index-only scans (they no
  longer visit the table's rows).
- journal_entries (purpose, currency, owner_type, owner_id, amount): the payout preview and each
  freeze chunk (`payouts.service.journal.available_balances`) read the `available` entries only,
  index-only, instead of scanning every entry.

Measured on a built history of 100,000 orders (loadtests/README.md, "History"). The upgrade
blocks writes to journal_entries while it builds the two indexes (6.6 s at 100,000 orders, 1.1M
entries, on this machine).

`lock_claimable` (which walks a payee's unclaimed shares) is left as it is: its index was not
measured to help on a built history, so none is added for it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_journal_entries_account', table_name='journal_entries')
    op.create_index('ix_journal_entries_account', 'journal_entries',
                    ['owner_type', 'owner_id', 'purpose', 'currency', 'amount'])
    op.create_index('ix_journal_entries_purpose', 'journal_entries',
                    ['purpose', 'currency', 'owner_type', 'owner_id', 'amount'])


def downgrade() -> None:
    op.drop_index('ix_journal_entries_purpose', table_name='journal_entries')
    op.drop_index('ix_journal_entries_account', table_name='journal_entries')
    op.create_index('ix_journal_entries_account', 'journal_entries', ['owner_type', 'owner_id', 'purpose', 'currency'])
