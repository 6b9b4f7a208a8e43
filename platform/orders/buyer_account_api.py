"""Buyer accounts' routes (orders.service.buyer_accounts): sign up, confirm the email through the
mailed link, then list every order placed with it. Thin: each calls the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kernel.auth import Principal, Role
from kernel.deps import DbSession, NoStore, PublicRateLimit, PublicWriteAudit, StrictQuery, get_runtime, require
from kernel.runtime import Runtime
from kernel.schemas import Page, decode_cursor, encode_cursor
from orders.models import BuyerAccount
from orders.schemas import (
    BuyerAccountConfirmIn,
    BuyerAccountIn,
    BuyerAccountOut,
    BuyerAccountSignedUpOut,
    OrderBuyerOut,
)
from orders.service import buyer_accounts, views

router = APIRouter(prefix="/v1", dependencies=[StrictQuery])
BuyerPrincipal = Annotated[Principal, Depends(require(Role.BUYER))]


def _out(account: BuyerAccount) -> BuyerAccountOut:
    return BuyerAccountOut(person_id=account.person_id, email=account.email, confirmed_at=account.confirmed_at)


@router.post("/buyer-accounts", status_code=201, response_model=BuyerAccountSignedUpOut, tags=["buyers"],
             dependencies=[PublicRateLimit, NoStore],
             responses={409: {"description": "this person has a buyer account already"}})
def sign_up(
    body: BuyerAccountIn, session: DbSession, audit: PublicWriteAudit,
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> BuyerAccountSignedUpOut:
    """Public: a buyer creates an account (a person with this password; an existing person proves it
    with theirs) and gets a personal key (shown once). A confirmation link is mailed to the email:
    its orders are shown only once it is used."""
    done = buyer_accounts.sign_up(session, runtime.settings, str(body.email).lower(), body.name,
                                  body.password.get_secret_value())
    audit.actor(done.person.id, (Role.BUYER.value, done.person.id))
    audit.object("buyer_account", done.account.id)
    return BuyerAccountSignedUpOut(**_out(done.account).model_dump(), api_key=done.key.key)


@router.post("/buyer-accounts/confirm", response_model=BuyerAccountOut, tags=["buyers"],
             dependencies=[PublicRateLimit, NoStore],
             responses={404: {"description": "no confirmation with this token"},
                        410: {"description": "the link expired"}})
def confirm(body: BuyerAccountConfirmIn, session: DbSession, audit: PublicWriteAudit) -> BuyerAccountOut:
    """Public: the link mailed at sign-up confirms the email (once)."""
    account = buyer_accounts.confirm(session, body.token)
    audit.actor(account.person_id, (Role.BUYER.value, account.person_id))
    audit.object("buyer_account", account.id)
    return _out(account)


@router.get("/buyer-accounts/me", response_model=BuyerAccountOut, tags=["buyers"],
            responses={404: {"description": "the key's person has no buyer account"}})
def get_mine(session: DbSession, principal: BuyerPrincipal) -> BuyerAccountOut:
    """The caller's buyer account: its email and whether it is confirmed."""
    return _out(buyer_accounts.account_of(session, principal))


@router.get("/me/orders", response_model=Page[OrderBuyerOut], tags=["buyers"], dependencies=[NoStore],
            responses={403: {"description": "the account's email is not confirmed yet"},
                       404: {"description": "the key's person has no buyer account"}})
def my_orders(
    session: DbSession, principal: BuyerPrincipal, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[OrderBuyerOut]:
    """Every order placed with the account's email, in every storefront (guest checkouts included),
    newest first; only once the email is confirmed."""
    rows = buyer_accounts.orders_of(session, principal, after=decode_cursor(cursor), limit=limit + 1)
    return Page(items=[views.order_for_buyer(o) for o in rows[:limit]],
                next_cursor=encode_cursor(rows[limit - 1].id) if len(rows) > limit else None)
