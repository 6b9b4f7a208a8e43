"""Keys made before people existed keep working after the people migration, as organization
keys with the full role of their kind."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from kernel import auth
from kernel.auth import Role
from kernel.db import make_sessionmaker, new_id, session_scope
from marketplace.migrate import upgrade


def test_a_key_made_before_the_people_migration_is_an_organization_key_after_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0010")
    key = "mk_0123abcd_" + "k" * 32
    seller_id = new_id()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_keys (id, key_hash, prefix, role, subject_id, name, created_at) "
                          "VALUES (:id, :hash, 'mk_0123abcd', 'seller', :subject, 'old', '2026-01-01 00:00:00')"),
                     {"id": new_id().hex, "hash": auth.hash_key(key), "subject": seller_id.hex})
    upgrade(url)
    with session_scope(make_sessionmaker(engine)) as session:
        principal = auth.authenticate(session, key)
    engine.dispose()
    assert (principal.role, principal.subject_id, principal.person_id) == (Role.SELLER, seller_id, None)
    assert principal.effective_role == "owner" and "products.create" in principal.permissions
