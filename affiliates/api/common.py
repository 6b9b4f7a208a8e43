"""What the resource modules of the affiliates API share: the runtime, the two mixed-role
dependencies and the pagination parameters (one object each, so every route gets the same one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from kernel.auth import Principal, Role
from kernel.deps import get_runtime, require
from kernel.runtime import Runtime

RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SellerOrOperator = Annotated[Principal, Depends(require(Role.SELLER, Role.OPERATOR))]
AffiliateOrOperator = Annotated[Principal, Depends(require(Role.AFFILIATE, Role.OPERATOR))]
Limit = Annotated[int, Query(ge=1, le=200, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")]
