"""``migrate adopt`` refusing, up front and the same in a dry run, what it cannot convert: each
names what it found, and the database is left as it was."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from tests.catalog import snapshot
from tests.conftest import DbFixture
from tests.migrations.prisma import prisma_with, refused, state
from tests.state import digest


def test_a_history_table_without_prisma_columns_is_refused(empty_db: DbFixture) -> None:
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE _prisma_migrations (id varchar(36) primary key)")
    before = snapshot(empty_db.url, version_tables=True), digest(empty_db.url)
    doc = refused(empty_db)
    assert "_prisma_migrations is not Prisma Migrate's history" in doc["error"]
    assert "it lacks column(s) checksum, finished_at, migration_name" in doc["error"]
    assert (snapshot(empty_db.url, version_tables=True), digest(empty_db.url)) == before


def test_emails_differing_only_in_case_are_refused(prisma_db: DbFixture) -> None:
    before = prisma_with(
        prisma_db, "INSERT INTO users (id, email, password_hash, name, role, updated_at) VALUES "
                   "('0f0e0d0c-0b0a-4909-8807-060504030201', 'Customer@Example.com', 'x', 'Twin', "
                   "'CUSTOMER', now())")
    doc = refused(prisma_db)
    assert doc["problems"] == [
        "users.email: 1 value(s) are held by more than one row in different case, e.g. "
        "Customer@Example.com, customer@example.com (id 0f0e0d0c-0b0a-4909-8807-060504030201, "
        "a3c1e8d2-52b4-4f3e-8c6a-9d2f1b7e4a22); lower-cased they would be one value"]
    assert state(prisma_db.url) == before


def test_ids_differing_only_in_case_are_refused_in_both_runs(prisma_db: DbFixture) -> None:
    before = prisma_with(
        prisma_db, "INSERT INTO users (id, email, password_hash, name, role, updated_at) VALUES "
                   "('A3C1E8D2-52B4-4F3E-8C6A-9D2F1B7E4A22', 'twin@example.com', 'x', 'Twin', "
                   "'CUSTOMER', now())")
    doc = refused(prisma_db)
    assert doc["problems"] == [
        "users.id: 1 value(s) are held by more than one row in different case, e.g. "
        "A3C1E8D2-52B4-4F3E-8C6A-9D2F1B7E4A22, a3c1e8d2-52b4-4f3e-8c6a-9d2f1b7e4a22 (id "
        "A3C1E8D2-52B4-4F3E-8C6A-9D2F1B7E4A22, a3c1e8d2-52b4-4f3e-8c6a-9d2f1b7e4a22); "
        "lower-cased they would be one value"]
    assert state(prisma_db.url) == before


@pytest.mark.parametrize("kind", ["VIEW", "MATERIALIZED VIEW"])
def test_a_view_over_prisma_columns_is_refused_up_front(prisma_db: DbFixture,
                                                        kind: str) -> None:
    before = prisma_with(prisma_db, sql.SQL("CREATE {} my_users AS SELECT id, created_at "
                                             "FROM users").format(sql.SQL(kind)))
    doc = refused(prisma_db)
    assert doc["problems"] == [f"{kind.lower()} public.my_users reads table users, whose columns "
                               "adopt converts; drop it, adopt, then create it again"]
    assert state(prisma_db.url) == before


def test_a_partly_applied_prisma_history_is_refused_up_front(prisma_db: DbFixture) -> None:
    before = prisma_with(prisma_db, "DROP TABLE payment_transactions, payments",
                          'DROP TYPE "PaymentStatus", "PaymentType"',
                          "DELETE FROM _prisma_migrations WHERE migration_name = "
                          "'20260102000000_add_payments'")
    doc = refused(prisma_db)
    missing = "is missing: the guide's Prisma migrations make it, and adopt converts a " \
              "database they were all applied to (`prisma migrate deploy`)"
    assert sorted(doc["problems"]) == sorted(f"{thing} {missing}" for thing in (
        "type PaymentStatus", "type PaymentType", "table payments", "table payment_transactions"))
    assert state(prisma_db.url) == before


def test_an_enum_type_or_value_not_in_the_schema_is_refused(prisma_db: DbFixture) -> None:
    before = prisma_with(prisma_db, """CREATE TYPE "Mood" AS ENUM ('a')""",
                          """ALTER TYPE "UserRole" ADD VALUE 'SUPPORT'""")
    doc = refused(prisma_db)
    assert doc["problems"] == ["type Mood is not in shared-db's schema", "type UserRole has "
                               "value 'SUPPORT', which shared-db's schema does not"]
    assert state(prisma_db.url) == before


def test_a_column_out_of_order_is_named_for_what_it_is(prisma_db: DbFixture) -> None:
    prisma_with(prisma_db, "ALTER TABLE users DROP COLUMN name",
                 "ALTER TABLE users ADD COLUMN name text NOT NULL DEFAULT ''",
                 "ALTER TABLE users ALTER COLUMN name DROP DEFAULT")
    doc = refused(prisma_db)
    assert "column users.role must move to the end of the table as from users.role on the " \
           "columns' order differs from the migrations', and has an index or constraint; " \
           "adopt rebuilds only plain columns" in doc["problems"]
