"""``migrate adopt`` on a database built by the DDL Prisma Migrate generates for the guide's
schema (``fixtures/prisma_guide.sql``), with rows in every table."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.errors import DuplicateError
from tests.catalog import snapshot
from tests.cli.test_migrate_review import _env, _ok, per_service  # noqa: F401 (a fixture)
from tests.conftest import DbFixture
from tests.migrations.conftest import PRISMA_DDL
from tests.migrations.prisma import prisma_with, state
from tests.state import digest

CUSTOMER = uuid.UUID("a3c1e8d2-52b4-4f3e-8c6a-9d2f1b7e4a22")


def test_adopt_converts_to_exactly_the_migrations_schema(prisma_db: DbFixture,
                                                         migrated_db: DbFixture) -> None:
    doc = json.loads(_ok("migrate", "adopt", "--json", env=prisma_db.env()))
    assert doc["adopted"] is True and doc["dry_run"] is False
    assert doc["prisma_migrations"] == ["20260101000000_init", "20260102000000_add_payments",
                                        "20260103000000_add_sessions"]
    assert len(doc["stamped"]) == 5 and "links:20260103000001_link_services" in doc["stamped"]
    assert {c["table"] for c in doc["checks"]} == {
        "users", "refresh_tokens", "devices", "sessions", "payments", "payment_transactions",
        "audit_logs", "system_config", "user_profiles"}
    assert all(c["ok"] and c["rows"] == c["rows_after"] > 0 for c in doc["checks"])
    assert doc["conversions"]["users.id"] == "uuid"
    assert doc["conversions"]["sessions.expires_at"] == "timestamp with time zone"
    adopted, fresh = snapshot(prisma_db.url), snapshot(migrated_db.url)
    assert adopted == fresh
    # In the same order too: split and backups compare whole rows (md5(row::text)).
    assert {t: list(c) for t, c in adopted["tables"].items()} == {
        t: list(c) for t, c in fresh["tables"].items()}
    status = json.loads(_ok("migrate", "status", "--json", env=prisma_db.env()))
    assert status["up_to_date"] is True
    assert "up to date, no drift" in _ok("migrate", "status", env=prisma_db.env())


def test_adopted_data_is_intact_and_timestamps_are_utc(prisma_db: DbFixture) -> None:
    out = _ok("migrate", "adopt", env=prisma_db.env())
    assert "Adopted:" in out and "20260103000000_add_sessions" in out
    assert {t: n for t, (n, _) in digest(prisma_db.url).items()} == {
        "users": 3, "refresh_tokens": 2, "devices": 1, "sessions": 1, "payments": 2,
        "payment_transactions": 1, "audit_logs": 2, "system_config": 2, "user_profiles": 2,
        "auth_idempotency_keys": 0, "admin_idempotency_keys": 0, "profile_idempotency_keys": 0,
        "payments_idempotency_keys": 0}
    with psycopg.connect(prisma_db.url) as conn:
        conn.execute("SET TimeZone = 'America/New_York'")  # instants, whatever the session says
        user = conn.execute("SELECT id, email, role::text, email_verified, created_at, deleted_at "
                            "FROM users WHERE email = 'customer@example.com'").fetchone()
        payment = conn.execute("SELECT user_id, amount, metadata, created_at FROM payments "
                               "WHERE description = 'First order'").fetchone()
        session = conn.execute("SELECT refresh_token_id, expires_at FROM sessions").fetchone()
        config = conn.execute("SELECT value FROM system_config WHERE key = 'payment_limits'"
                              ).fetchone()
    assert user == (CUSTOMER, "customer@example.com", "CUSTOMER", False,
                    datetime(2026, 1, 7, 23, 59, 59, 999000, tzinfo=UTC), None)
    assert payment == (CUSTOMER, Decimal("99.99"), {"order": 1},
                       datetime(2026, 1, 10, 12, 0, 0, 250000, tzinfo=UTC))
    assert session == (uuid.UUID("5d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f44"),
                       datetime(2026, 1, 15, 6, 6, 6, 60000, tzinfo=UTC))
    assert config == ({"max": 10000, "currency": "USD"},)


async def test_the_repositories_work_on_an_adopted_database(prisma_db: DbFixture) -> None:
    _ok("migrate", "adopt", env=prisma_db.env())
    async with Database(load_settings({"DATABASE_URL": prisma_db.url})) as db:
        customer = await db.users.get_by_email("Customer@Example.com")
        assert customer is not None and customer.id == CUSTOMER
        assert customer.created_at == datetime(2026, 1, 7, 23, 59, 59, 999000, tzinfo=UTC)
        renamed = await db.users.update(CUSTOMER, name="Customer Renamed")
        assert renamed.updated_at > customer.updated_at  # the trigger adopt added
        payment = await db.payments.create(CUSTOMER, "5.00", type="payment")
        assert isinstance(payment.id, uuid.UUID) and payment.status.value == "pending"
        reports = {r.email: r for r in await db.reports.payment_reports("CUSTOMER")}
        assert reports["customer@example.com"].total_payments == 3
        new = await db.users.create(email="new@example.com", password="correct horse",
                                    name="New", role="VENDOR")
        await db.users.soft_delete(new.id)
        assert await db.users.get(new.id) is None


def test_dry_run_prints_the_plan_and_changes_nothing(prisma_db: DbFixture) -> None:
    before = state(prisma_db.url)
    doc = json.loads(_ok("migrate", "adopt", "--dry-run", "--json", env=prisma_db.env()))
    assert doc["dry_run"] is True and doc["adopted"] is False and doc["stamped"] == []
    assert doc["sql"][0].startswith("LOCK TABLE") and doc["sql"][-1] == \
        'DROP TABLE "_prisma_migrations"'
    assert any('TYPE uuid USING "id"::uuid' in s for s in doc["sql"])
    assert any("AT TIME ZONE 'UTC'" in s for s in doc["sql"])
    assert any(s.startswith('CREATE VIEW "payment_reports"') for s in doc["sql"])
    assert {c["table"]: c["rows"] for c in doc["checks"]}["users"] == 3
    out = _ok("migrate", "adopt", "--dry-run", env=prisma_db.env())
    assert "BEGIN;" in out and "COMMIT;" in out and "Nothing was changed." in out
    assert state(prisma_db.url) == before


def test_a_non_uuid_id_refuses_and_changes_nothing(prisma_db: DbFixture) -> None:
    with psycopg.connect(prisma_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO audit_logs (id, user_id, action) VALUES "
                     "('0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d99', 'legacy-42', 'import')")
    before = state(prisma_db.url)
    doc = json.loads(_ok("migrate", "adopt", "--json", env=prisma_db.env(), code=4))
    assert doc["adopted"] is False and doc["rolled_back"] is False
    assert doc["problems"] == [
        "audit_logs.user_id: 1 row(s) hold a value that is not a uuid, e.g. "
        "id='0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d99' holds 'legacy-42'"]
    assert "not uuids" in doc["error"]
    assert "legacy-42" in _ok("migrate", "adopt", "--dry-run", env=prisma_db.env(), code=4)
    assert state(prisma_db.url) == before


def test_a_difference_found_before_commit_rolls_everything_back(prisma_db: DbFixture) -> None:
    with psycopg.connect(prisma_db.url, autocommit=True) as conn:
        conn.execute("CREATE INDEX users_name_idx ON users (name)")
    before = state(prisma_db.url)
    doc = json.loads(_ok("migrate", "adopt", "--json", env=prisma_db.env(), code=8))
    assert doc["rolled_back"] is True
    assert doc["problems"] == ["index users_name_idx: in the database, not made by the "
                               "migrations"]
    assert state(prisma_db.url) == before


def test_adopting_twice_refuses(prisma_db: DbFixture, migrated_db: DbFixture) -> None:
    _ok("migrate", "adopt", env=prisma_db.env())
    doc = json.loads(_ok("migrate", "adopt", "--json", env=prisma_db.env(), code=4))
    assert "already adopted" in doc["error"]
    assert "already adopted" in json.loads(_ok("migrate", "adopt", "--json",
                                               env=migrated_db.env(), code=4))["error"]


def test_a_database_prisma_did_not_make_is_refused(empty_db: DbFixture) -> None:
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id text PRIMARY KEY)")
    doc = json.loads(_ok("migrate", "adopt", "--dry-run", "--json", env=empty_db.env(),
                         code=4))
    assert "not made by Prisma Migrate (no _prisma_migrations table)" in doc["error"]


def test_two_adopts_at_once_convert_once(prisma_db: DbFixture) -> None:
    # Two processes: Alembic keeps its migration context in module globals.
    runs = [subprocess.Popen([sys.executable, "-m", "shared_db", "migrate", "adopt", "--json"],
                             env=prisma_db.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    results = [(run.returncode, json.loads(out)) for run, out in zip(runs, outputs, strict=True)]
    assert sorted(code for code, _ in results) == [0, 4]
    assert ["already adopted" in doc["error"] for code, doc in results if code == 4] == [True]
    assert "up to date, no drift" in _ok("migrate", "status", env=prisma_db.env())


def test_per_service_topology_is_refused(per_service: dict[str, str]) -> None:  # noqa: F811
    doc = json.loads(_ok("migrate", "adopt", "--json", env=_env(per_service), code=4))
    assert "shared Prisma database" in doc["error"] and "shared-db split" in doc["error"]


def test_tables_locked_by_a_transaction_time_out_changing_nothing(prisma_db: DbFixture) -> None:
    before = state(prisma_db.url)
    with psycopg.connect(prisma_db.url) as holder:
        holder.execute("SELECT 1 FROM payments LIMIT 1")  # a reader holds the table till rollback
        result = subprocess.run(
            [sys.executable, "-m", "shared_db", "migrate", "adopt"],
            env={**prisma_db.env(), "SHARED_DB_LOCK_TIMEOUT": "0.2", "SHARED_DB_LOCK_RETRIES": "1"},
            capture_output=True, text=True, timeout=120, check=False)
        holder.rollback()
    assert result.returncode == 7, result.stderr
    assert "lock was not granted" in result.stderr and "nothing was changed" in result.stderr
    assert state(prisma_db.url) == before


def test_an_adopted_database_splits_per_service(prisma_db: DbFixture,
                                                per_service: dict[str, str]) -> None:  # noqa: F811
    _ok("migrate", "adopt", env=prisma_db.env())
    _ok("split", env={**_env(per_service), "DATABASE_URL": prisma_db.url})
    users = per_service["AUTH_DATABASE_URL"]
    with psycopg.connect(users) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (3,)
    assert json.loads(_ok("migrate", "status", "--json", env=_env(per_service)))["up_to_date"]


def test_a_statement_that_fails_rolls_back_and_prints_json(prisma_db: DbFixture) -> None:
    before = prisma_with(
        prisma_db,
        "CREATE FUNCTION no_updates() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN RAISE EXCEPTION 'users are read-only'; END$$",
        "CREATE TRIGGER users_read_only BEFORE UPDATE ON users FOR EACH ROW "
        "EXECUTE FUNCTION no_updates()")
    doc = json.loads(_ok("migrate", "adopt", "--json", env=prisma_db.env(), code=4))
    assert doc["adopted"] is False and doc["rolled_back"] is True and doc["problems"] == []
    assert "adopt failed and was rolled back, nothing was changed: users are read-only" \
        in doc["error"]
    assert state(prisma_db.url) == before


def test_a_lock_timeout_prints_json(prisma_db: DbFixture) -> None:
    with psycopg.connect(prisma_db.url) as holder:
        holder.execute("SELECT 1 FROM payments LIMIT 1")
        result = subprocess.run(
            [sys.executable, "-m", "shared_db", "migrate", "adopt", "--json"],
            env={**prisma_db.env(), "SHARED_DB_LOCK_TIMEOUT": "0.2", "SHARED_DB_LOCK_RETRIES": "0"},
            capture_output=True, text=True, timeout=120, check=False)
        holder.rollback()
    assert result.returncode == 7, result.stderr
    doc = json.loads(result.stdout)
    assert doc["adopted"] is False and doc["rolled_back"] is False
    assert "lock was not granted" in doc["error"] and len(result.stderr.splitlines()) == 1


def test_a_role_without_createdb_gets_json(prisma_db: DbFixture) -> None:
    role = f"adopt_{uuid.uuid4().hex[:8]}"
    name = sql.Identifier(role)
    with psycopg.connect(prisma_db.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB").format(name))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(name))
    try:
        url = prisma_db.url.replace("postgres@", f"{role}@", 1)
        doc = json.loads(_ok("migrate", "adopt", "--json", env={**prisma_db.env(),
                                                                 "DATABASE_URL": url}, code=4))
        assert "the role needs CREATEDB" in doc["error"] and doc["rolled_back"] is False
    finally:
        with psycopg.connect(prisma_db.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(name))
            conn.execute(sql.SQL("DROP ROLE {}").format(name))


async def test_mixed_case_emails_are_lower_cased(prisma_db: DbFixture) -> None:
    prisma_with(prisma_db, "INSERT INTO users (id, email, password_hash, name, role, updated_at) "
                            "VALUES ('0f0e0d0c-0b0a-4909-8807-060504030201', "
                            "'Mixed.Case@Example.COM', 'x', 'Mixed', 'CUSTOMER', now())")
    dry = json.loads(_ok("migrate", "adopt", "--dry-run", "--json", env=prisma_db.env()))
    assert dry["lowered"] == ["users.email"]
    assert 'UPDATE "users" SET "email" = lower("email") WHERE "email" <> lower("email")' \
        in dry["sql"]
    doc = json.loads(_ok("migrate", "adopt", "--json", env=prisma_db.env()))
    assert all(c["ok"] for c in doc["checks"])
    async with Database(load_settings({"DATABASE_URL": prisma_db.url})) as db:
        found = await db.users.get_by_email("Mixed.Case@Example.COM")
        assert found is not None and found.email == "mixed.case@example.com"
        with pytest.raises(DuplicateError):
            await db.users.create(email="mixed.case@example.com", password="correct horse",
                                  name="Second", role="CUSTOMER")


def test_upper_case_ids_become_uuids_with_their_references(prisma_db: DbFixture) -> None:
    upper = "ABCDEF01-2345-4678-89AB-CDEF01234567"
    prisma_with(prisma_db,
                 "INSERT INTO users (id, email, password_hash, name, role, updated_at) VALUES "
                 "('ABCDEF01-2345-4678-89AB-CDEF01234567', 'upper@example.com', 'x', 'Upper', "
                 "'VENDOR', now())",
                 "INSERT INTO refresh_tokens (id, user_id, token, expires_at) VALUES "
                 "('11111111-2222-4333-8444-555555555555', "
                 "'ABCDEF01-2345-4678-89AB-CDEF01234567', 'rt_upper', now())")
    doc = json.loads(_ok("migrate", "adopt", "--json", env=prisma_db.env()))
    assert all(c["ok"] for c in doc["checks"])
    with psycopg.connect(prisma_db.url) as conn:
        assert conn.execute("SELECT u.id FROM users u JOIN refresh_tokens r ON r.user_id = u.id "
                            "WHERE r.token = 'rt_upper'").fetchone() == (uuid.UUID(upper),)


def test_a_url_with_a_schema_is_adopted_there(empty_db: DbFixture) -> None:
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA app")
        conn.execute("SET search_path = app")
        conn.execute(PRISMA_DDL.read_text())
    env = {**empty_db.env(), "DATABASE_URL": f"{empty_db.url}?schema=app"}
    doc = json.loads(_ok("migrate", "adopt", "--json", env=env))
    assert doc["adopted"] is True and all(c["ok"] for c in doc["checks"])
    assert json.loads(_ok("migrate", "status", "--json", env=env))["up_to_date"] is True
    with psycopg.connect(empty_db.url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                            ).fetchone() == (0,)
