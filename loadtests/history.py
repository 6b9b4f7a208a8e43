"""Build a realistic history of paid orders, set-based, on PostgreSQL.

    python -m loadtests.history --orders 100000 [--database-url postgresql+psycopg://...]

Each history order is what checkout + mark-paid + the release task leave behind, written with
a few `INSERT ... SELECT` over `generate_series` in ONE transaction (a failure leaves nothing):
an order of two sub-orders (two sellers, one line each), one affiliate commission on the first
line, all paid more than 90 days ago, delivered, past the return window and the holding period:

- `order.paid`: platform clearing -total, each seller's pending +net, the affiliate's pending
  +commission, platform fees +fee (the postings of `orders.service.settlement.paid_postings`);
- `seller_share.available` per sub-order and `commission.available` per commission (pending ->
  available, as the release task posts them).

So the shares sit in `available` (the status `available`, `seller_share_released`), and
`marketplace ledger audit` is clean afterwards. The sellers and affiliates are the database's own
(the first 50 of each by id; half of all orders go to the first seller, a busy payee), or
synthetic ids when it has fewer than two sellers or no affiliate. Ids are derived from `--tag`
(default: random), so the command can run again on the same database to add more history.
Stock, products and the last 90 days are untouched: growth comes from history alone.

Then the growth rollups (`growth_daily`, `growth_customers`) are filled set-based from every
paid order, in the same transaction, by the same recomputation `marketplace growth rebuild` runs
(`orders.service.rollups.rebuild`; `--no-rollups` skips it). The 5,000 history buyers come back
(`buyer{i % 5000}`), so the reports see returning customers.
"""

from __future__ import annotations

import argparse
import time
import uuid

from sqlalchemy import Connection, create_engine, text

# Shares of a line, in basis points of its amount (integer division: the seller gets the rest).
FEE_BPS = 1000
COMMISSION_BPS = 500

_PLAN = """
CREATE TEMP TABLE history_plan ON COMMIT DROP AS
WITH base AS (
    SELECT i,
           CASE WHEN i % 2 = 0 THEN 0 ELSE i % :ns END AS s1,
           1000 + (i * 37) % 9000 AS unit1, 1 + i % 3 AS qty1,
           500 + (i * 53) % 5000 AS unit2,
           now() - interval '91 days' - i * interval '1 minute' AS paid_at
    FROM generate_series(1, :n) AS i
), shares AS (
    SELECT *, unit1 * qty1 AS amount1, unit2 AS amount2,
           unit1 * qty1 * :fee_bps / 10000 AS fee1, unit1 * qty1 * :commission_bps / 10000 AS comm1,
           unit2 * :fee_bps / 10000 AS fee2
    FROM base
)
SELECT i, paid_at,
       md5(:tag || '-o-' || i)::uuid AS order_id,
       md5(:tag || '-s1-' || i)::uuid AS sub1, md5(:tag || '-s2-' || i)::uuid AS sub2,
       md5(:tag || '-l1-' || i)::uuid AS line1, md5(:tag || '-l2-' || i)::uuid AS line2,
       md5(:tag || '-c-' || i)::uuid AS commission_id,
       (CAST(:sellers AS uuid[]))[s1 + 1] AS seller1,
       (CAST(:sellers AS uuid[]))[(s1 + 1) % :ns + 1] AS seller2,
       (CAST(:affiliates AS uuid[]))[i % :na + 1] AS affiliate_id,
       unit1, qty1, unit2, amount1, amount2, fee1, fee2, comm1,
       amount1 - fee1 - comm1 AS net1, amount2 - fee2 AS net2
FROM shares
"""

_ORDERS = """
INSERT INTO orders (id, storefront_id, affiliate_id, attribution_source, click_id, coupon_id, coupon_code,
    self_referral, buyer_email, buyer_name, shipping_address, currency, gross_amount, discount_amount,
    total_amount, platform_fee_amount, commission_amount, refunded_amount, status, payment_rail, payment_id,
    payment_client_secret, expires_at, paid_at, cancelled_at, cancel_reason, created_at)
SELECT order_id, NULL, affiliate_id, 'click', NULL, NULL, NULL, false,
       'buyer' || (i % 5000) || '@history.example', 'History Buyer', '{"country": "US"}'::json, :currency,
       amount1 + amount2, 0, amount1 + amount2, fee1 + fee2, comm1, 0, 'paid', 'manual', NULL, NULL,
       paid_at + interval '25 minutes', paid_at, NULL, NULL, paid_at - interval '5 minutes'
FROM history_plan
"""

_SUB_ORDERS = """
INSERT INTO sub_orders (id, order_id, seller_id, currency, amount, platform_fee_amount, commission_amount,
    seller_net_amount, refunded_amount, status, tracking_number, carrier, reject_reason, shipped_at,
    delivered_at, seller_share_available_at, seller_share_released, payout_item_id, created_at)
SELECT sub1, order_id, seller1, :currency, amount1, fee1, comm1, net1, 0, 'delivered', NULL, NULL, NULL,
       paid_at + interval '1 day', paid_at + interval '3 days', paid_at + interval '17 days', true, NULL::uuid,
       paid_at - interval '5 minutes'
FROM history_plan
UNION ALL
SELECT sub2, order_id, seller2, :currency, amount2, fee2, 0, net2, 0, 'delivered', NULL, NULL, NULL,
       paid_at + interval '1 day', paid_at + interval '3 days', paid_at + interval '17 days', true, NULL::uuid,
       paid_at - interval '5 minutes'
FROM history_plan
"""

_LINES = """
INSERT INTO order_lines (id, order_id, sub_order_id, position, seller_id, product_id, variant_id, sku,
    product_name, variant_name, unit_amount, quantity, gross_amount, discount_amount, amount,
    platform_fee_amount, seller_net_amount, refunded_quantity, refunded_amount, refunded_platform_fee,
    refunded_seller_net)
SELECT line1, order_id, sub1, 0, seller1, md5('history-product-' || seller1)::uuid,
       md5('history-variant-' || seller1)::uuid, 'HIST-1', 'History product', 'Standard', unit1, qty1,
       amount1, 0, amount1, fee1, net1, 0, 0, 0, 0
FROM history_plan
UNION ALL
SELECT line2, order_id, sub2, 1, seller2, md5('history-product-' || seller2)::uuid,
       md5('history-variant-' || seller2)::uuid, 'HIST-2', 'History product', 'Standard', unit2, 1,
       amount2, 0, amount2, fee2, net2, 0, 0, 0, 0
FROM history_plan
"""

_COMMISSIONS = """
INSERT INTO commissions (id, order_id, order_line_id, sub_order_id, seller_id, affiliate_id, role, program_id,
    plan_version_id, funded_by, currency, amount, reversed_amount, status, holding_period_days, available_at,
    payout_item_id, created_at)
SELECT commission_id, order_id, line1, sub1, seller1, affiliate_id, 'affiliate',
       md5('history-program-' || seller1)::uuid, md5('history-plan-' || seller1)::uuid, 'seller', :currency,
       comm1, 0, 'available', 30, paid_at + interval '30 days', NULL, paid_at - interval '5 minutes'
FROM history_plan
"""

# Transactions: (kind, reference type, reference column, key, created_at expression).
_TRANSACTIONS = """
INSERT INTO journal_transactions (id, kind, reference_type, reference_id, currency, order_id, memo, created_at)
SELECT md5(:tag || '-t-paid-' || i)::uuid, 'order.paid', 'order', order_id::text, :currency, order_id,
       'order ' || order_id || ' paid', paid_at FROM history_plan
UNION ALL
SELECT md5(:tag || '-t-s1-' || i)::uuid, 'seller_share.available', 'sub_order', sub1::text, :currency, order_id,
       'return window passed', paid_at + interval '17 days' FROM history_plan
UNION ALL
SELECT md5(:tag || '-t-s2-' || i)::uuid, 'seller_share.available', 'sub_order', sub2::text, :currency, order_id,
       'return window passed', paid_at + interval '17 days' FROM history_plan
UNION ALL
SELECT md5(:tag || '-t-c-' || i)::uuid, 'commission.available', 'commission', commission_id::text, :currency,
       order_id, 'holding period passed', paid_at + interval '30 days' FROM history_plan
"""

# Entries: one row per (plan row, leg); the legs of each transaction sum to zero by construction
# (clearing -(a1 + a2) = -(net1 + comm1 + fee1 + net2 + fee2)).
_ENTRY_ROWS = """
SELECT md5(:tag || '-e-' || p.i || '-' || leg.k)::uuid, md5(:tag || '-t-' || leg.txn || '-' || p.i)::uuid,
       leg.owner_type, leg.owner_id, leg.purpose, :currency, leg.amount, leg.source_type, leg.source_id,
       p.paid_at + leg.delay
FROM history_plan AS p
CROSS JOIN LATERAL (VALUES
    (1, 'paid', 'platform', NULL::uuid, 'clearing', -(p.amount1 + p.amount2), 'order', p.order_id, interval '0'),
    (2, 'paid', 'seller', p.seller1, 'pending', p.net1, 'sub_order', p.sub1, interval '0'),
    (3, 'paid', 'seller', p.seller2, 'pending', p.net2, 'sub_order', p.sub2, interval '0'),
    (4, 'paid', 'affiliate', p.affiliate_id, 'pending', p.comm1, 'commission', p.commission_id, interval '0'),
    (5, 'paid', 'platform', NULL::uuid, 'fees', p.fee1 + p.fee2, 'order', p.order_id, interval '0'),
    (6, 's1', 'seller', p.seller1, 'pending', -p.net1, 'sub_order', p.sub1, interval '17 days'),
    (7, 's1', 'seller', p.seller1, 'available', p.net1, 'sub_order', p.sub1, interval '17 days'),
    (8, 's2', 'seller', p.seller2, 'pending', -p.net2, 'sub_order', p.sub2, interval '17 days'),
    (9, 's2', 'seller', p.seller2, 'available', p.net2, 'sub_order', p.sub2, interval '17 days'),
    (10, 'c', 'affiliate', p.affiliate_id, 'pending', -p.comm1, 'commission', p.commission_id,
     interval '30 days'),
    (11, 'c', 'affiliate', p.affiliate_id, 'available', p.comm1, 'commission', p.commission_id,
     interval '30 days')
) AS leg(k, txn, owner_type, owner_id, purpose, amount, source_type, source_id, delay)
WHERE leg.amount <> 0
"""
_ENTRIES = """
INSERT INTO journal_entries (id, transaction_id, owner_type, owner_id, purpose, currency, amount, source_type,
    source_id, created_at)
""" + _ENTRY_ROWS

# The same entries added to the balance table (kernel.ledger's `ledger_balances`, migration 0016) in
# shard 0, as the migration's backfill adds them; skipped on a database upgraded only to 0015.
_BALANCES = """
INSERT INTO ledger_balances (owner_type, owner_id, purpose, currency, shard, balance, entries)
SELECT e.owner_type, COALESCE(e.owner_id, '00000000-0000-0000-0000-000000000000'::uuid), e.purpose, e.currency, 0,
       SUM(e.amount), COUNT(*)
FROM (""" + _ENTRY_ROWS + """) AS e(id, transaction_id, owner_type, owner_id, purpose, currency, amount, source_type,
      source_id, created_at)
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
ON CONFLICT (owner_type, owner_id, purpose, currency, shard) DO UPDATE
SET balance = ledger_balances.balance + excluded.balance, entries = ledger_balances.entries + excluded.entries
"""

STEPS = (("orders", _ORDERS), ("sub_orders", _SUB_ORDERS), ("order_lines", _LINES),
         ("commissions", _COMMISSIONS), ("journal_transactions", _TRANSACTIONS), ("journal_entries", _ENTRIES))


def _payees(conn: Connection, table: str, needed: int, tag: str) -> list[uuid.UUID]:
    ids = list(conn.execute(text(f"SELECT id FROM {table} ORDER BY id LIMIT 50")).scalars())
    if len(ids) >= needed:
        return ids
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"history/{tag}/{table}/{k}") for k in range(max(needed, 5))]


def build_history(conn: Connection, orders: int, *, tag: str | None = None, currency: str = "USD",
                  with_rollups: bool = True) -> dict[str, int]:
    """Add `orders` paid, released history orders on `conn` (PostgreSQL), in the caller's
    transaction, and (`with_rollups`) rebuild the growth rollups; returns the rows written per table."""
    if conn.dialect.name != "postgresql":
        raise SystemExit("the history builder writes with PostgreSQL's generate_series: give a PostgreSQL URL")
    if orders < 1:
        raise SystemExit("--orders must be at least 1")
    tag = tag or uuid.uuid4().hex[:12]
    sellers = _payees(conn, "sellers", 2, tag)
    affiliates = _payees(conn, "affiliates", 1, tag)
    params = {"n": orders, "tag": tag, "currency": currency, "sellers": sellers, "affiliates": affiliates,
              "ns": len(sellers), "na": len(affiliates), "fee_bps": FEE_BPS, "commission_bps": COMMISSION_BPS}
    conn.execute(text(_PLAN), params)
    written = {}
    for table, sql in STEPS:
        written[table] = conn.execute(text(sql), params).rowcount
    if conn.execute(text("SELECT to_regclass('ledger_balances')")).scalar() is not None:
        written["ledger_balances"] = conn.execute(text(_BALANCES), params).rowcount
    for table, _sql in STEPS:
        conn.execute(text(f"ANALYZE {table}"))
    if with_rollups:
        written.update(fill_rollups(conn))
    return written


def fill_rollups(conn: Connection) -> dict[str, int]:
    """The growth rollups from every paid order (set-based: GROUP BY and INSERT ... SELECT)."""
    from sqlalchemy.orm import Session

    from orders.service import rollups

    session = Session(bind=conn)
    report = rollups.rebuild(session, write=True)
    session.flush()
    if report.journal_mismatches:
        raise SystemExit(f"the rollups disagree with the journal: {report.journal_mismatches}")
    for table in ("growth_daily", "growth_customers"):
        conn.execute(text(f"ANALYZE {table}"))
    return {"growth_daily": report.rows, "growth_customers": report.customers}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--database-url", default=None, help="default: the settings' DATABASE_URL")
    parser.add_argument("--tag", default=None, help="id seed (default random; the same tag twice collides)")
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--no-rollups", action="store_true", help="leave the growth rollups as they are")
    args = parser.parse_args(argv)
    url = args.database_url
    if url is None:
        from kernel.settings import get_settings

        url = get_settings().database_url
    engine = create_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        written = build_history(conn, args.orders, tag=args.tag, currency=args.currency,
                                with_rollups=not args.no_rollups)
    engine.dispose()
    print({**written, "seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
