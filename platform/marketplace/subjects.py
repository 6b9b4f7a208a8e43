"""What an API key may act for, answered by the domains that own sellers and affiliates.

The kernel's `auth.check_key_subject` takes this as a parameter: it sits below catalog and
affiliates and may not import their tables.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from affiliates.models import Affiliate
from catalog.models import Seller
from kernel.auth import Role


def subject_exists(session: Session, role: Role, subject_id: uuid.UUID) -> bool:
    """Whether the seller (seller role) or affiliate (affiliate role) `subject_id` exists."""
    model: type[Seller] | type[Affiliate] = Seller if role is Role.SELLER else Affiliate
    return session.get(model, subject_id) is not None
