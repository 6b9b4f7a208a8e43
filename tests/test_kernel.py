"""Kernel rules that have no HTTP surface of their own: the standard-library `platform` module,
money allocation, and the journal's balance and append-only rules."""

from __future__ import annotations

import sys
import sysconfig
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from kernel import ledger
from kernel.clock import clock
from kernel.db import session_scope
from kernel.money import Money, MoneyError, allocate, bps_share, prorate, round_half_even_div, to_minor
from marketplace.bootstrap import audit_ledger
from tests.conftest import Backend


def test_standard_library_platform_module_is_the_one_imported() -> None:
    import platform

    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(platform.__file__).resolve().parent == stdlib
    assert platform.python_version() == ".".join(map(str, sys.version_info[:3]))
    import sqlalchemy  # would fail at import if our folder shadowed the standard library

    assert sqlalchemy.__version__


@given(
    amount=st.integers(min_value=-(10**12), max_value=10**12),
    weights=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12).filter(any),
)
def test_allocation_parts_always_sum_to_the_whole(amount: int, weights: list[int]) -> None:
    parts = allocate(amount, weights)
    assert sum(parts) == amount
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = amount * weight / total
        assert abs(part - exact) < 1 + 1e-9  # each part is within one minor unit of exact
        if weight == 0:
            assert part == 0


def test_allocation_gives_remainders_to_the_largest_then_the_first_listed() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(600, [70, 30]) == [420, 180]
    assert allocate(100, [70, 30]) == [70, 30]
    assert allocate(5, [1, 2]) == [2, 3]  # remainders 2/3 vs 1/3... 5*1/3=1.67, 5*2/3=3.33
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]


def test_bps_share_rounds_half_to_even() -> None:
    assert bps_share(4999, 1000) == 500  # 499.9
    assert bps_share(4999, 800) == 400  # 399.92
    assert bps_share(25, 1000) == 2  # 2.5 -> 2 (even)
    assert bps_share(35, 1000) == 4  # 3.5 -> 4 (even)
    assert round_half_even_div(-5, 2) == -2
    assert prorate(200, 1, 2) == 100


def test_money_refuses_floats_unknown_currencies_and_mixing() -> None:
    with pytest.raises(MoneyError):
        Money(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(100, "XXX")
    with pytest.raises(MoneyError):
        Money(1, "USD") + Money(1, "EUR")
    assert Money(1, "usd") + Money(2, "USD") == Money(3, "USD")
    assert to_minor("49.99", "USD") == 4999
    assert to_minor("500", "JPY") == 500
    with pytest.raises(MoneyError):
        to_minor("1.5", "JPY")


def _post_sale(env: Backend, reference: str) -> uuid.UUID:
    seller = uuid.uuid4()
    with session_scope(env.runtime.sessions) as session:
        ledger.post(
            session, kind="test.sale", reference_type="test", reference_id=reference, currency="USD",
            postings=[
                ledger.Posting(ledger.PLATFORM, None, ledger.CLEARING, -1000),
                ledger.Posting(ledger.SELLER, seller, ledger.PENDING, 900),
                ledger.Posting(ledger.PLATFORM, None, ledger.FEES, 100),
            ],
        )
    return seller


def test_journal_refuses_an_unbalanced_transaction(env: Backend) -> None:
    with pytest.raises(ledger.LedgerError, match="unbalanced by 1"), session_scope(env.runtime.sessions) as s:
        ledger.post(
            s, kind="test.sale", reference_type="test", reference_id="x", currency="USD",
            postings=[ledger.Posting(ledger.PLATFORM, None, ledger.CLEARING, -1000),
                      ledger.Posting(ledger.PLATFORM, None, ledger.FEES, 1001)],
        )


def test_balances_are_sums_of_entries_and_the_audit_is_clean(env: Backend) -> None:
    seller = _post_sale(env, "r1")
    with session_scope(env.runtime.sessions) as session:
        assert ledger.balance_of(session, ledger.SELLER, seller, ledger.PENDING, "USD") == 900
        assert audit_ledger(session) == []


def test_the_same_posting_for_the_same_reference_happens_once(env: Backend) -> None:
    _post_sale(env, "r2")
    with pytest.raises(IntegrityError):
        _post_sale(env, "r2")


def test_journal_rows_cannot_be_edited_through_the_orm(env: Backend) -> None:
    _post_sale(env, "r3")
    with pytest.raises(ledger.LedgerError), session_scope(env.runtime.sessions) as session:
        entry = session.scalars(select(ledger.JournalEntry)).first()
        assert entry is not None
        entry.amount = 1
        session.flush()


@pytest.mark.postgres_only
def test_journal_rows_cannot_be_edited_even_in_raw_sql_on_postgresql(env: Backend) -> None:
    _post_sale(env, "r4")
    with pytest.raises(Exception, match="append-only"), env.runtime.engine.begin() as conn:
        conn.execute(text("UPDATE journal_entries SET amount = amount + 1"))
    with pytest.raises(Exception, match="append-only"), env.runtime.engine.begin() as conn:
        conn.execute(text("DELETE FROM journal_entries"))


def test_audit_finds_a_transaction_that_does_not_sum_to_zero(env: Backend) -> None:
    """Inserted behind the service's back, as a corrupted database would hold it."""
    txn_id = uuid.uuid4()
    with env.runtime.engine.begin() as conn:
        conn.execute(
            insert(ledger.JournalTransaction).values(
                id=txn_id, kind="bad", reference_type="test", reference_id="bad", currency="USD",
                created_at=clock.now(),
            )
        )
        conn.execute(
            insert(ledger.JournalEntry).values(
                id=uuid.uuid4(), transaction_id=txn_id, owner_type="platform", purpose="fees",
                currency="USD", amount=1, created_at=clock.now(),
            )
        )
    with session_scope(env.runtime.sessions) as session:
        checks = {finding.check for finding in audit_ledger(session)}
    # books_balance sums the balance table, which the entry went around: the table check names that.
    assert {"transactions_balance", "balance_table_matches_journal"} <= checks
