"""The one permission table: what each role of each organization kind may do, and what each
operation needs. Every principal (an organization's API key, a person's key) is checked here,
by `authorize`, called once per request from kernel.deps.

Organization kinds are the existing key roles (`kernel.auth.Role`): a seller, an affiliate, the
platform's operator team. Inside a kind, a member holds one role:

- seller:    owner, admin, catalog, fulfilment, finance, viewer
- affiliate: owner, admin, marketing, finance, viewer
- operator:  admin, support, finance, viewer
- buyer:     admin, approver, payer, requester (a buyer organization's buying roles: a requester
             places orders, an approver approves those above the placer's spending limit, a payer
             sees how to pay; the admin manages members, limits and addresses)

An organization API key (one made before people existed, or for a server) holds the kind's full
role: seller and affiliate `owner`, operator `admin`.

Each operation ("METHOD /path template") names ONE permission in `OPERATION_PERMISSIONS`. A
permission is only ever granted to roles of the kinds whose keys the operation accepts, so the
table alone predicts every answer (tests/people/test_permission_matrix.py checks it against the
OpenAPI). An operation missing from the table is refused (fail closed) and fails that test.
The README's "People, roles and permissions" section is generated from the same data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from kernel.errors import Forbidden

SELLER, AFFILIATE, OPERATOR, BUYER = "seller", "affiliate", "operator", "buyer"
"""The organization kinds: the values of kernel.auth.Role (a StrEnum, so either indexes these
tables; this module cannot import auth, which imports it)."""

OPERATOR_TEAM_ID = uuid.UUID("00000000-0000-7000-8000-000000000001")
"""The operator team's organization id (sellers and affiliates use their own ids)."""

SELLER_ROLES = ("owner", "admin", "catalog", "fulfilment", "finance", "viewer")
AFFILIATE_ROLES = ("owner", "admin", "marketing", "finance", "viewer")
OPERATOR_ROLES = ("admin", "support", "finance", "viewer")
BUYER_ROLES = ("admin", "approver", "payer", "requester")
ROLES: dict[str, tuple[str, ...]] = {
    SELLER: SELLER_ROLES, AFFILIATE: AFFILIATE_ROLES, OPERATOR: OPERATOR_ROLES, BUYER: BUYER_ROLES,
}
KINDS: tuple[str, ...] = (OPERATOR, SELLER, AFFILIATE, BUYER)
TOP_ROLE: dict[str, str] = {SELLER: "owner", AFFILIATE: "owner", OPERATOR: "admin", BUYER: "admin"}
"""The role an organization always keeps at least one member in, and an organization key's role."""
MANAGER_ROLES: dict[str, frozenset[str]] = {
    SELLER: frozenset({"owner", "admin"}), AFFILIATE: frozenset({"owner", "admin"}),
    OPERATOR: frozenset({"admin"}), BUYER: frozenset({"admin"}),
}
"""Who invites, removes and changes members (an admin never touches an owner: see kernel.people)."""

ALL = "*"

# permission -> {kind: roles holding it}. ALL: every role of that kind.
_GRANTS: dict[str, dict[str, tuple[str, ...] | str]] = {
    # --- everyone -------------------------------------------------------------------------------
    "me.read": {SELLER: ALL, AFFILIATE: ALL, OPERATOR: ALL, BUYER: ALL},
    "personal_keys.manage": {SELLER: ALL, AFFILIATE: ALL, OPERATOR: ALL, BUYER: ALL},
    "sessions.manage": {SELLER: ALL, AFFILIATE: ALL, OPERATOR: ALL, BUYER: ALL},
    "catalog.browse": {SELLER: ALL, AFFILIATE: ALL, OPERATOR: ALL},
    "programs.read": {SELLER: ALL, AFFILIATE: ALL, OPERATOR: ALL},
    "reports.read": {SELLER: ALL, AFFILIATE: ALL, OPERATOR: ALL},
    "commissions.preview": {SELLER: ALL, AFFILIATE: ALL, OPERATOR: ALL},
    "members.read": {SELLER: ALL, AFFILIATE: ALL, OPERATOR: ALL, BUYER: ALL},
    # --- money reads ----------------------------------------------------------------------------
    "commissions.read": {SELLER: ("owner", "admin", "finance", "viewer"),
                         AFFILIATE: ("owner", "admin", "marketing", "finance", "viewer"),
                         OPERATOR: ALL},
    "balances.read": {SELLER: ("owner", "admin", "finance", "viewer"),
                      AFFILIATE: ("owner", "admin", "finance", "viewer"), OPERATOR: ALL},
    # --- organization administration ------------------------------------------------------------
    "members.manage": {SELLER: ("owner", "admin"), AFFILIATE: ("owner", "admin"),
                       OPERATOR: ("admin",), BUYER: ("admin",)},
    "audit.read": {SELLER: ("owner", "admin"), AFFILIATE: ("owner", "admin"),
                   OPERATOR: ("admin", "support", "finance")},
    "api_keys.read": {SELLER: ("owner", "admin"), AFFILIATE: ("owner", "admin"),
                      OPERATOR: ("admin",)},
    "api_keys.revoke": {SELLER: ("owner", "admin"), AFFILIATE: ("owner", "admin"),
                        OPERATOR: ("admin",)},
    "api_keys.create": {OPERATOR: ("admin",)},
    "webhooks.secret": {SELLER: ("owner", "admin"), AFFILIATE: ("owner", "admin")},
    # --- seller ---------------------------------------------------------------------------------
    "seller.read": {SELLER: ALL},
    "seller.update": {SELLER: ("owner", "admin")},
    "seller.payout_account": {SELLER: ("owner", "admin", "finance")},
    "products.read": {SELLER: ALL, OPERATOR: ALL},
    "products.create": {SELLER: ("owner", "admin", "catalog")},
    "products.write": {SELLER: ("owner", "admin", "catalog"), OPERATOR: ("admin", "support")},
    "shipping.read": {SELLER: ALL},
    "shipping.write": {SELLER: ("owner", "admin", "catalog")},
    "stock.write": {SELLER: ("owner", "admin", "catalog", "fulfilment"), OPERATOR: ("admin", "support")},
    "sub_orders.read": {SELLER: ALL, OPERATOR: ALL},
    "sub_orders.fulfil": {SELLER: ("owner", "admin", "fulfilment")},
    "sub_orders.refund": {SELLER: ("owner", "admin", "fulfilment", "finance")},
    "programs.create": {SELLER: ("owner", "admin")},
    "programs.manage": {SELLER: ("owner", "admin"), OPERATOR: ("admin", "support")},
    "programs.members.read": {SELLER: ALL, OPERATOR: ALL},
    # --- affiliate ------------------------------------------------------------------------------
    "affiliate.read": {AFFILIATE: ALL},
    "affiliate.update": {AFFILIATE: ("owner", "admin")},
    "affiliate.payout_account": {AFFILIATE: ("owner", "admin", "finance")},
    "programs.join": {AFFILIATE: ("owner", "admin", "marketing")},
    "storefronts.read": {AFFILIATE: ALL, OPERATOR: ALL},
    "storefronts.create": {AFFILIATE: ("owner", "admin", "marketing")},
    "storefronts.write": {AFFILIATE: ("owner", "admin", "marketing"), OPERATOR: ("admin", "support")},
    "links.create": {AFFILIATE: ("owner", "admin", "marketing")},
    "links.read": {AFFILIATE: ALL, OPERATOR: ALL},
    "links.write": {AFFILIATE: ("owner", "admin", "marketing"), OPERATOR: ("admin", "support")},
    # --- operator -------------------------------------------------------------------------------
    "applications.read": {OPERATOR: ALL},
    "applications.decide": {OPERATOR: ("admin",)},
    "payout_accounts.verify": {OPERATOR: ("admin", "finance")},
    "orders.read": {OPERATOR: ALL},
    "orders.mark_paid": {OPERATOR: ("admin", "finance")},
    "orders.refund": {OPERATOR: ("admin", "support")},
    "refunds.settle": {OPERATOR: ("admin", "support", "finance")},
    "alarms.read": {SELLER: ("owner", "admin", "finance", "viewer"), OPERATOR: ALL},
    "alarms.resolve": {OPERATOR: ("admin", "support")},
    "platform_balances.read": {OPERATOR: ALL},
    "payout_batches.read": {OPERATOR: ALL},
    "payout_batches.create": {OPERATOR: ("admin", "finance")},
    "payout_batches.approve": {OPERATOR: ("admin", "finance")},
    "payout_batches.run": {OPERATOR: ("admin", "finance")},
    "payout_holds.read": {OPERATOR: ALL},
    "payout_holds.manage": {OPERATOR: ("admin", "finance")},
    "webhook_events.read": {OPERATOR: ("admin", "support")},
    "webhook_events.retry": {OPERATOR: ("admin", "support")},
    # --- buyer organizations --------------------------------------------------------------------
    "buyer_org.read": {BUYER: ALL},
    "buyer_org.manage": {BUYER: ("admin",)},
    "buyer_orders.place": {BUYER: ("admin", "approver", "requester")},
    "buyer_orders.read": {BUYER: ALL},
    "buyer_orders.approve": {BUYER: ("admin", "approver")},
    "buyer_terms.manage": {OPERATOR: ("admin", "finance")},
    "buyer_account.read": {BUYER: ALL},
    "invoices.read": {OPERATOR: ALL},
    "buyer_invoices.read": {BUYER: ("admin", "approver", "payer")},
    # --- buyer data (orders.service.buyer_policy decides the fields) -----------------------------
    "affiliate_orders.read": {AFFILIATE: ALL},
    "buyer_access_log.read": {SELLER: ("owner", "admin"), OPERATOR: ("admin", "support"), BUYER: ("admin",)},
    "privacy.manage": {OPERATOR: ("admin", "support")},
    "contacts.read": {SELLER: ("owner", "admin", "fulfilment", "viewer"), AFFILIATE: ("owner", "admin", "marketing")},
    "contacts.write": {SELLER: ("owner", "admin"), AFFILIATE: ("owner", "admin", "marketing")},
}

OPERATION_PERMISSIONS: dict[str, str] = {
    # people, keys and the audit log
    "GET /v1/me": "me.read",
    "GET /v1/me/api-keys": "personal_keys.manage",
    "POST /v1/me/api-keys": "personal_keys.manage",
    "DELETE /v1/me/api-keys/{key_id}": "personal_keys.manage",
    "GET /v1/sessions": "sessions.manage",
    "DELETE /v1/sessions/current": "sessions.manage",
    "DELETE /v1/sessions/{session_id}": "sessions.manage",
    "POST /v1/me/totp": "sessions.manage",
    "POST /v1/me/totp/confirm": "sessions.manage",
    "POST /v1/me/totp/disable": "sessions.manage",
    "GET /v1/organizations/{organization_id}/members": "members.read",
    "PATCH /v1/organizations/{organization_id}/members/{person_id}": "members.manage",
    "DELETE /v1/organizations/{organization_id}/members/{person_id}": "members.manage",
    "GET /v1/organizations/{organization_id}/invitations": "members.manage",
    "POST /v1/organizations/{organization_id}/invitations": "members.manage",
    "DELETE /v1/organizations/{organization_id}/invitations/{invitation_id}": "members.manage",
    "GET /v1/audit-events": "audit.read",
    "GET /v1/audit-events/export": "audit.read",
    "GET /v1/api-keys": "api_keys.read",
    "POST /v1/api-keys": "api_keys.create",
    "DELETE /v1/api-keys/{key_id}": "api_keys.revoke",
    "GET /v1/webhook-secret": "webhooks.secret",
    # orders, refunds, fulfilment, money reads
    "GET /v1/orders": "orders.read",
    "GET /v1/orders/{order_id}": "orders.read",
    "POST /v1/orders/{order_id}/mark-paid": "orders.mark_paid",
    "POST /v1/orders/{order_id}/refunds": "orders.refund",
    "GET /v1/orders/{order_id}/refunds": "orders.read",
    "GET /v1/refunds": "orders.read",
    "POST /v1/refunds/{refund_id}/settle": "refunds.settle",
    "GET /v1/sub-orders": "sub_orders.read",
    "GET /v1/sub-orders/{sub_order_id}": "sub_orders.read",
    "POST /v1/sub-orders/{sub_order_id}/accept": "sub_orders.fulfil",
    "POST /v1/sub-orders/{sub_order_id}/ship": "sub_orders.fulfil",
    "POST /v1/sub-orders/{sub_order_id}/deliver": "sub_orders.fulfil",
    "POST /v1/sub-orders/{sub_order_id}/reject": "sub_orders.fulfil",
    "POST /v1/sub-orders/{sub_order_id}/refunds": "sub_orders.refund",
    "GET /v1/commissions": "commissions.read",
    "GET /v1/balances": "balances.read",
    "GET /v1/platform/balances": "platform_balances.read",
    "GET /v1/ledger/audit": "platform_balances.read",
    "GET /v1/reports/growth": "reports.read",
    "GET /v1/reports/today": "platform_balances.read",
    "GET /v1/reports/funnel": "reports.read",
    "GET /v1/quotas": "reports.read",
    "GET /v1/alarms": "alarms.read",
    "POST /v1/alarms/{alarm_id}/resolve": "alarms.resolve",
    "POST /v1/programs/{program_id}/quotas": "programs.manage",
    "POST /v1/programs/{program_id}/simulations": "programs.manage",
    # affiliates, programs, storefronts, links
    "GET /v1/affiliates": "applications.read",
    "GET /v1/affiliates/me": "affiliate.read",
    "PATCH /v1/affiliates/me": "affiliate.update",
    "GET /v1/affiliates/me/payout-account": "affiliate.read",
    "POST /v1/affiliates/me/payout-account": "affiliate.payout_account",
    "GET /v1/affiliates/me/memberships": "affiliate.read",
    "GET /v1/affiliates/me/clicks": "links.read",
    "GET /v1/affiliates/me/coupons": "affiliate.read",
    "GET /v1/affiliates/{affiliate_id}": "applications.read",
    "POST /v1/affiliates/{affiliate_id}/approve": "applications.decide",
    "POST /v1/affiliates/{affiliate_id}/reject": "applications.decide",
    "POST /v1/affiliates/{affiliate_id}/payout-account/verify": "payout_accounts.verify",
    "POST /v1/programs": "programs.create",
    "GET /v1/programs": "programs.read",
    "GET /v1/programs/{program_id}": "programs.read",
    "PATCH /v1/programs/{program_id}": "programs.manage",
    "POST /v1/programs/{program_id}/memberships": "programs.join",
    "GET /v1/programs/{program_id}/memberships": "programs.members.read",
    "POST /v1/programs/{program_id}/memberships/{membership_id}/approve": "programs.manage",
    "POST /v1/programs/{program_id}/memberships/{membership_id}/reject": "programs.manage",
    "POST /v1/programs/{program_id}/memberships/{membership_id}/remove": "programs.manage",
    "POST /v1/programs/{program_id}/plan-versions": "programs.manage",
    "GET /v1/programs/{program_id}/plan-versions": "programs.read",
    "POST /v1/programs/{program_id}/coupons": "programs.manage",
    "GET /v1/programs/{program_id}/coupons": "programs.members.read",
    "POST /v1/programs/{program_id}/coupons/{coupon_id}/deactivate": "programs.manage",
    "POST /v1/programs/{program_id}/charters": "programs.manage",
    "GET /v1/programs/{program_id}/charters": "programs.read",
    "POST /v1/programs/{program_id}/charter-acceptances": "programs.join",
    "POST /v1/storefronts": "storefronts.create",
    "GET /v1/storefronts": "storefronts.read",
    "GET /v1/storefronts/{slug}/settings": "storefronts.read",
    "PATCH /v1/storefronts/{slug}": "storefronts.write",
    "POST /v1/storefronts/{slug}/listings": "storefronts.write",
    "GET /v1/storefronts/{slug}/listings": "storefronts.read",
    "DELETE /v1/storefronts/{slug}/listings/{product_id}": "storefronts.write",
    "POST /v1/referral-links": "links.create",
    "GET /v1/referral-links": "links.read",
    "GET /v1/referral-links/{link_id}": "links.read",
    "POST /v1/referral-links/{link_id}/deactivate": "links.write",
    "GET /v1/referral-links/{link_id}/clicks/daily": "links.read",
    "POST /v1/commissions/preview": "commissions.preview",
    # sellers and products
    "GET /v1/sellers": "applications.read",
    "GET /v1/sellers/me": "seller.read",
    "PATCH /v1/sellers/me": "seller.update",
    "GET /v1/sellers/me/payout-account": "seller.read",
    "POST /v1/sellers/me/payout-account": "seller.payout_account",
    "GET /v1/sellers/{seller_id}": "applications.read",
    "POST /v1/sellers/{seller_id}/approve": "applications.decide",
    "POST /v1/sellers/{seller_id}/reject": "applications.decide",
    "POST /v1/sellers/{seller_id}/payout-account/verify": "payout_accounts.verify",
    "POST /v1/products": "products.create",
    "GET /v1/products": "products.read",
    "GET /v1/products/{product_id}": "products.read",
    "PATCH /v1/products/{product_id}": "products.write",
    "POST /v1/products/{product_id}/variants": "products.write",
    "PATCH /v1/products/{product_id}/variants/{variant_id}": "products.write",
    "POST /v1/products/{product_id}/variants/{variant_id}/stock": "stock.write",
    "POST /v1/products/{product_id}/publish": "products.write",
    "POST /v1/products/{product_id}/unpublish": "products.write",
    "POST /v1/products/{product_id}/archive": "products.write",
    "POST /v1/shipping-profiles": "shipping.write",
    "GET /v1/shipping-profiles": "shipping.read",
    "POST /v1/shipping-profiles/{profile_id}/archive": "shipping.write",
    "GET /v1/catalog/products": "catalog.browse",
    "GET /v1/catalog/products/{product_id}": "catalog.browse",
    # payouts and the Stripe inbox
    "POST /v1/payout-batches": "payout_batches.create",
    "GET /v1/payout-batches": "payout_batches.read",
    "GET /v1/payout-batches/{batch_id}": "payout_batches.read",
    "POST /v1/payout-batches/{batch_id}/approve": "payout_batches.approve",
    "POST /v1/payout-batches/{batch_id}/cancel": "payout_batches.run",
    "POST /v1/payout-batches/{batch_id}/run": "payout_batches.run",
    "GET /v1/payout-batches/{batch_id}/items": "payout_batches.read",
    "POST /v1/payout-batches/{batch_id}/reconcile": "payout_batches.run",
    "GET /v1/payout-batches/{batch_id}/reconciliation": "payout_batches.read",
    "GET /v1/payout-batches/{batch_id}/export": "payout_batches.read",
    "GET /v1/payouts": "balances.read",
    "GET /v1/payouts/{payout_id}": "balances.read",
    "POST /v1/payout-holds": "payout_holds.manage",
    "GET /v1/payout-holds": "payout_holds.read",
    "POST /v1/payout-holds/{hold_id}/release": "payout_holds.manage",
    "GET /v1/webhooks/events": "webhook_events.read",
    "POST /v1/webhooks/events/{event_id}/retry": "webhook_events.retry",
    # buyer organizations
    "GET /v1/buyer-organizations/me": "buyer_org.read",
    "PUT /v1/buyer-organizations/me/members/{person_id}/spending-limit": "buyer_org.manage",
    "POST /v1/buyer-organizations/me/addresses": "buyer_org.manage",
    "POST /v1/buyer-organizations/me/orders": "buyer_orders.place",
    "GET /v1/buyer-organizations/me/orders": "buyer_orders.read",
    "POST /v1/buyer-organizations/me/orders/{order_id}/approve": "buyer_orders.approve",
    "POST /v1/buyer-organizations/me/orders/{order_id}/reject": "buyer_orders.approve",
    "GET /v1/buyer-organizations/me/invoices": "buyer_invoices.read",
    "PUT /v1/buyer-organizations/{buyer_organization_id}/invoice-terms": "buyer_terms.manage",
    "GET /v1/invoices": "invoices.read",
    "GET /v1/buyer-accounts/me": "buyer_account.read",
    "GET /v1/me/orders": "buyer_account.read",
    "POST /v1/invoices/{invoice_id}/payments": "orders.mark_paid",
    "GET /v1/affiliates/me/orders": "affiliate_orders.read",
    "GET /v1/buyer-data-access": "buyer_access_log.read",
    "GET /v1/privacy/exports": "privacy.manage",
    "POST /v1/privacy/erasures": "privacy.manage",
    "GET /v1/relationship-contacts": "contacts.read",
    "POST /v1/relationship-contacts": "contacts.write",
}

READ_ONLY_WRITES = frozenset({"POST /v1/commissions/preview", "POST /v1/shipping/quote"})
"""Operations sent with POST that change nothing: the audit log skips them."""


def _expand(kind: str, roles: tuple[str, ...] | str) -> tuple[str, ...]:
    return ROLES[kind] if roles == ALL else tuple(roles)


def _build() -> dict[str, dict[str, frozenset[str]]]:
    table: dict[str, dict[str, set[str]]] = {kind: {role: set() for role in roles} for kind, roles in ROLES.items()}
    for permission, grants in _GRANTS.items():
        for kind, roles in grants.items():
            for role in _expand(kind, roles):
                table[kind][role].add(permission)  # KeyError: a typo in a role name fails at import
    return {kind: {role: frozenset(perms) for role, perms in roles.items()} for kind, roles in table.items()}


ROLE_PERMISSIONS: dict[str, dict[str, frozenset[str]]] = _build()
"""kind -> role -> the permissions it holds."""


def permissions_of(kind: str, role: str) -> frozenset[str]:
    return ROLE_PERMISSIONS[kind].get(role, frozenset())


def is_role(kind: str, role: str) -> bool:
    return role in ROLES[kind]


def within(kind: str, narrower: str, wider: str) -> bool:
    """Whether `narrower` may do nothing that `wider` may not (a personal key's role against the
    key or membership it comes from). The top role is within only itself: an owner's and an
    admin's permissions are alike, but only an owner touches owners (kernel.people)."""
    if narrower == TOP_ROLE[kind] and wider != narrower:
        return False
    return permissions_of(kind, narrower) <= permissions_of(kind, wider)


def operation(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


def authorize(held: Iterable[str], method: str, path: str, kind: str | None = None) -> None:
    """Raise Forbidden unless `held` includes the permission the operation needs. `kind` (the
    caller's organization kind): when no role of that kind holds the permission at all, the
    answer names the kind of key that would, which is what a caller with the wrong key needs."""
    op = operation(method, path)
    needed = OPERATION_PERMISSIONS.get(op)
    if needed is None:  # fail closed: an operation nobody listed is nobody's
        raise Forbidden(f"{op} has no entry in the permission table")
    if needed in held:
        return
    if kind is not None and not any(needed in perms for perms in ROLE_PERMISSIONS[kind].values()):
        kinds = [other for other in KINDS
                 if any(needed in perms for perms in ROLE_PERMISSIONS[other].values())]
        wanted = " or ".join(with_article(other) for other in kinds) or "another"
        raise Forbidden(f"this action needs {wanted} key; yours is {with_article(kind)} key")
    raise Forbidden(f"this action needs the {needed} permission, which your role does not have")


def with_article(word: str) -> str:
    """`word` with its indefinite article: "an operator", "a seller"."""
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def markdown_table() -> str:
    """The README's table: each permission and the roles holding it."""
    lines = ["| permission | seller | affiliate | operator | buyer |", "| --- | --- | --- | --- | --- |"]
    for permission, grants in sorted(_GRANTS.items()):
        cells = [", ".join(_expand(kind, grants[kind])) if kind in grants else ""
                 for kind in (SELLER, AFFILIATE, OPERATOR, BUYER)]
        lines.append(f"| `{permission}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
