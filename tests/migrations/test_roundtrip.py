"""Every migration round-trips: up, down to the exact previous schema, up again; with rows."""

from __future__ import annotations

import psycopg

from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.ops import migrate
from shared_db.ops.history import all_steps
from tests.catalog import snapshot
from tests.conftest import DbFixture

ROWS = {
    "users": "INSERT INTO users (email, password_hash, name, role) VALUES "
             "('a@example.com', 'x', 'A', 'ADMIN'), ('b@example.com', 'y', 'B', 'CUSTOMER')",
    "refresh_tokens": "INSERT INTO refresh_tokens (user_id, token, expires_at) "
                      "SELECT id, 'tok-' || email, now() + interval '1 day' FROM users",
    "devices": "INSERT INTO devices (user_id, device_id) SELECT id, 'dev-' || email FROM users",
    "sessions": "INSERT INTO sessions (user_id, device_id, expires_at) "
                "SELECT user_id, id, now() + interval '1 hour' FROM devices",
    "audit_logs": "INSERT INTO audit_logs (action, details) VALUES ('seed', '{\"n\": 1}')",
    "system_config": "INSERT INTO system_config (key, value) VALUES ('feature', 'true')",
    "user_profiles": "INSERT INTO user_profiles (user_id, bio) SELECT id, 'bio' FROM users",
    "payments": "INSERT INTO payments (user_id, amount, status, type) "
                "SELECT id, 12.5, 'pending', 'payment' FROM users",
    "payment_transactions": "INSERT INTO payment_transactions "
                            "(payment_id, transaction_type, amount, status) "
                            "SELECT id, 'charge', amount, 'ok' FROM payments",
} | {f"{service}_idempotency_keys": f"INSERT INTO {service}_idempotency_keys "
     "(key, operation, request_hash, expires_at) VALUES ('k', 'op', 'h', now())"
     for service in ("auth", "admin", "profile", "payments")}


def _populate(url: str) -> dict[str, int]:
    """Put rows in every table that exists and is empty; return row counts."""
    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        present = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        if "users" not in present:
            # Before auth exists, profiles and payments point at made-up users.
            conn.execute("CREATE TEMP TABLE users (id uuid, email text)")
            conn.execute("INSERT INTO users VALUES (gen_random_uuid(), 'ghost@example.com')")
        for table, insert in ROWS.items():
            if table in present:
                if not conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                    conn.execute(insert)
                counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return counts


def test_every_migration_round_trips_with_rows(empty_db: DbFixture) -> None:
    target = empty_db.target()
    steps = all_steps(PACKAGE_MIGRATIONS, target.chains)
    assert len(steps) == 10
    for step in steps:
        counts_before = _populate(empty_db.url) if step.chain != "links" else None
        before = snapshot(empty_db.url)
        assert migrate.deploy(target, PACKAGE_MIGRATIONS, limit=1).steps == [step]
        after = snapshot(empty_db.url)
        assert after != before, f"{step.label} changed nothing"
        (undone,) = migrate.down([target], PACKAGE_MIGRATIONS)
        assert undone.steps == [step]
        assert snapshot(empty_db.url) == before, f"{step.label} did not downgrade cleanly"
        migrate.deploy(target, PACKAGE_MIGRATIONS, limit=1)
        assert snapshot(empty_db.url) == after, f"{step.label} differs after a second upgrade"
        if counts_before:
            assert _populate(empty_db.url) | counts_before == _populate(empty_db.url)


def test_down_to_base_and_back(empty_db: DbFixture) -> None:
    target = empty_db.target()
    migrate.deploy(target, PACKAGE_MIGRATIONS)
    full = snapshot(empty_db.url)
    results = migrate.down([target], PACKAGE_MIGRATIONS, to="base")
    assert [s.label for s in results[0].steps] == [
        "payments:20261201000000_add_idempotency_keys",
        "profile:20261201000000_add_idempotency_keys", "admin:20261201000000_add_idempotency_keys",
        "auth:20261201000000_add_idempotency_keys", "links:20260103000001_link_services",
        "auth:20260103000000_add_sessions",
        "payments:20260102000000_add_payments", "profile:20260101000000_init",
        "admin:20260101000000_init", "auth:20260101000000_init"]
    empty = snapshot(empty_db.url)
    assert not [t for t in empty["tables"] if not t.startswith("alembic_version_")]
    assert empty["enums"] == {} and empty["functions"] == []
    migrate.deploy(target, PACKAGE_MIGRATIONS)
    assert snapshot(empty_db.url) == full


def test_down_to_a_named_migration(migrated_db: DbFixture) -> None:
    target = migrated_db.target()
    (result,) = migrate.down([target], PACKAGE_MIGRATIONS, to="payments:20260102000000")
    assert [s.label for s in result.steps] == [
        "payments:20261201000000_add_idempotency_keys",
        "profile:20261201000000_add_idempotency_keys", "admin:20261201000000_add_idempotency_keys",
        "auth:20261201000000_add_idempotency_keys", "links:20260103000001_link_services",
        "auth:20260103000000_add_sessions"]
    tables = set(snapshot(migrated_db.url)["tables"])
    assert "payments" in tables and "sessions" not in tables
