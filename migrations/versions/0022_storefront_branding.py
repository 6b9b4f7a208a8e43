"""Storefront branding: each market maker's logo (an https URL) and colour (issue 14)

- storefronts.logo_url: an https URL the storefront pages show as the logo (with alt text), or null.
- storefronts.brand_color: `#rrggbb`, checked when set to keep white text readable on it (WCAG AA,
  contrast 4.5:1), or null for the platform's colour.

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('storefronts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('logo_url', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('brand_color', sa.String(length=7), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('storefronts', schema=None) as batch_op:
        batch_op.drop_column('brand_color')
        batch_op.drop_column('logo_url')
