"""Builders for payout tests: payees, balances (posted straight to the journal, as the order flow
would leave them), orders whose shares a payout claims, and a Stripe-configured runtime pointed
at the fake Stripe server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from affiliates.models import Affiliate
from catalog.models import Seller
from kernel import ledger
from kernel.clock import clock
from kernel.db import new_id, session_scope
from kernel.ledger import AVAILABLE, CLEARING, PLATFORM, SELLER, JournalTransaction, Posting
from kernel.runtime import Runtime, set_runtime
from marketplace.app import create_app
from marketplace.bootstrap import audit_ledger
from orders.models import Commission, Order, OrderLine, SubOrder
from payouts.models import PayoutItem
from tests.conftest import Backend, make_settings
from tests.fake_stripe import FakeStripe
from tests.fake_stripe.base import Ctx
from tests.fake_stripe.clients import fast_retries
from tests.fake_stripe.fixture import fake_stripe, fake_stripe_server

__all__ = ["fake_stripe", "fake_stripe_server"]


def make_payee(
    env: Backend, kind: str = SELLER, *, name: str | None = None, status: str = "approved",
    payout_status: str = "payouts_enabled", bank: str | None = "IBAN DE00 TEST", stripe_account: str | None = None,
    webhook_url: str | None = None,
) -> uuid.UUID:
    """A seller or affiliate row with the payout fields set (straight into the table)."""
    payee_id = new_id()
    tag = payee_id.hex[-10:]
    common: dict[str, Any] = {
        "id": payee_id, "name": name or f"{kind} {tag}", "email": f"{kind}-{tag}@example.com", "status": status,
        "payout_status": payout_status, "bank_reference": bank, "stripe_account_id": stripe_account,
        "webhook_url": webhook_url,
    }
    with session_scope(env.runtime.sessions) as session:
        if kind == SELLER:
            session.add(Seller(**common))
        else:
            session.add(Affiliate(**common, referral_code=f"ref{tag}"))
    return payee_id


def credit(env: Backend, owner_type: str, owner_id: uuid.UUID, amount: int, currency: str = "USD") -> None:
    """Move `amount` minor units into the payee's available balance (negative: a clawback)."""
    with session_scope(env.runtime.sessions) as session:
        ledger.post(
            session, kind="test.credit", reference_type="test", reference_id=new_id(), currency=currency,
            postings=[Posting(owner_type, owner_id, AVAILABLE, amount), Posting(PLATFORM, None, CLEARING, -amount)],
        )


def balance(env: Backend, owner_type: str, owner_id: uuid.UUID | None, purpose: str, currency: str = "USD") -> int:
    with session_scope(env.runtime.sessions) as session:
        return ledger.balance_of(session, owner_type, owner_id, purpose, currency)


def audit(env: Backend) -> list[str]:
    with session_scope(env.runtime.sessions) as session:
        return [f"{f.check}: {f.detail}" for f in audit_ledger(session)]


def count_postings(env: Backend, kind: str) -> int:
    with session_scope(env.runtime.sessions) as session:
        return session.scalar(select(func.count()).select_from(JournalTransaction).where(
            JournalTransaction.kind == kind)) or 0


def items_of(env: Backend, batch_id: str | uuid.UUID) -> list[PayoutItem]:
    with session_scope(env.runtime.sessions) as session:
        return list(session.scalars(
            select(PayoutItem).where(PayoutItem.batch_id == uuid.UUID(str(batch_id))).order_by(PayoutItem.id)))


@dataclass
class Sale:
    order_id: uuid.UUID
    sub_order_id: uuid.UUID
    commission_id: uuid.UUID


def matured_sale(
    env: Backend, seller_id: uuid.UUID, affiliate_id: uuid.UUID, *, seller_net: int, commission: int,
    fee: int = 100, currency: str = "USD",
) -> Sale:
    """An order with one line, paid and past its holding periods, through the order domain's own
    settlement (`mark_paid`, then `release_matured`): the seller's share and the commission sit in
    `available`, exactly as a real sale leaves them for a payout."""
    from orders.service import settlement

    total = seller_net + commission + fee
    now = clock.now()
    with session_scope(env.runtime.sessions) as session:
        order = Order(
            attribution_source="storefront", affiliate_id=affiliate_id, buyer_email="buyer@example.com",
            buyer_name="Buyer", shipping_address={"line1": "1 Way"}, currency=currency, gross_amount=total,
            discount_amount=0, total_amount=total, platform_fee_amount=fee, commission_amount=commission,
            payment_rail="manual", expires_at=now + timedelta(hours=1),
        )
        session.add(order)
        session.flush()
        sub = SubOrder(order_id=order.id, seller_id=seller_id, currency=currency, amount=total,
                       platform_fee_amount=fee, commission_amount=commission, seller_net_amount=seller_net)
        session.add(sub)
        session.flush()
        line = OrderLine(order_id=order.id, sub_order_id=sub.id, position=0, seller_id=seller_id,
                         product_id=new_id(), variant_id=new_id(), sku="SKU-1", product_name="Thing",
                         variant_name="Pro", unit_amount=total, quantity=1, gross_amount=total, discount_amount=0,
                         amount=total, platform_fee_amount=fee, seller_net_amount=seller_net)
        session.add(line)
        session.flush()
        com = Commission(order_id=order.id, order_line_id=line.id, sub_order_id=sub.id, seller_id=seller_id,
                         affiliate_id=affiliate_id, role="storefront", program_id=new_id(), plan_version_id=new_id(),
                         funded_by="seller", currency=currency, amount=commission, holding_period_days=0)
        session.add(com)
        session.flush()
        sale = Sale(order.id, sub.id, com.id)
    with session_scope(env.runtime.sessions) as session:
        settlement.mark_paid(session, env.settings, sale.order_id)
    with session_scope(env.runtime.sessions) as session:
        past = clock.now() - timedelta(seconds=1)
        session.execute(update(SubOrder).where(SubOrder.id == sale.sub_order_id)
                        .values(status="delivered", seller_share_available_at=past))
        session.execute(update(Commission).where(Commission.id == sale.commission_id).values(available_at=past))
        settlement.release_matured(session)
    return sale


# --- Stripe ------------------------------------------------------------------------------------


def stripe_account(fake: FakeStripe, *, onboarded: bool = True) -> str:
    """A connected account on the fake server (created in-process: no HTTP round trip)."""
    with fake._lock:
        account = fake.api.create_account(Ctx(), {"type": "express"})
        if onboarded:
            fake.api.complete_onboarding(account["id"])
    return str(account["id"])


def transfers_by_destination(fake: FakeStripe) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for transfer in fake.objects("transfer"):
        found.setdefault(transfer["destination"], []).append(transfer)
    return found


@dataclass
class StripeBackend:
    env: Backend
    runtime: Runtime
    client: TestClient
    fake: FakeStripe


@pytest.fixture
def stripe_env(
    env: Backend, fake_stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> Iterator[StripeBackend]:
    """The same database with the Stripe rail pointed at the fake server (1 s timeout, 2 SDK
    retries, fast back-off); tasks run in-process on this runtime."""
    fast_retries(monkeypatch)
    settings = make_settings(
        env.settings.database_url, env.settings.redis_url, stripe_api_key=fake_stripe.api_key,
        stripe_api_base=fake_stripe.url, stripe_timeout_seconds=1.0, stripe_max_network_retries=2,
        payout_export_dir=str(tmp_path), payout_retry_base_seconds=1.0,
    )
    runtime = Runtime(settings)
    set_runtime(runtime)
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            yield StripeBackend(env, runtime, client, fake_stripe)
    finally:
        set_runtime(env.runtime)
        runtime.close()


@pytest.fixture(autouse=True)
def ledger_audit_clean_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a payout test did, `marketplace ledger audit` must still be clean afterwards."""
    skip = any(request.node.get_closest_marker(m) for m in ("slow", "ledger_corrupted"))
    watched = "env" in request.fixturenames and not skip
    env = request.getfixturevalue("env") if watched else None  # set up first, so torn down after this
    yield
    if env is not None:
        findings = audit(env)
        assert findings == [], findings
