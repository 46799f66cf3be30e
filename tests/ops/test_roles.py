"""``shared-db roles``: each service's role reaches what that service uses, and nothing else.

Every check connects as the role itself; a refused statement is PostgreSQL's own
``insufficient_privilege``, and the allowed work is the package's real calls.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.errors import DataAccessError, ForeignKeyError
from shared_db.ops import roles
from shared_db.ops.targets import Target
from shared_db.profile.service import create_user_with_profile
from shared_db.services import SERVICES
from shared_db.url import ConnectionSettings, parse_database_url
from tests.conftest import DbFixture, Stores
from tests.factories import PASSWORD_HASH


@pytest.fixture
def prefix(server: ConnectionSettings) -> Iterator[str]:
    name = f"sdbt{secrets.token_hex(3)}_"
    yield name
    admin = server.with_database("postgres").libpq_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        databases = [d for (d,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'sdbtest%'")]
    for database in databases:  # the grants live in each database
        with psycopg.connect(server.with_database(database).libpq_url(),
                             autocommit=True) as conn:
            for service in SERVICES:
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                (name + service,)).fetchone():
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(
                        sql.Identifier(name + service)))
    with psycopg.connect(admin, autocommit=True) as conn:
        for service in SERVICES:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(
                sql.Identifier(name + service)))


def _as(url: str, role: str) -> str:
    return parse_database_url(url).url.set(username=role).render(hide_password=False)


def _refused(url: str, statement: str) -> None:
    with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


async def test_shared_topology_roles(migrated_db: DbFixture, prefix: str) -> None:
    target = Target("shared", migrated_db.connection, ("auth", "payments", "admin", "profile"))
    granted = roles.apply([target], prefix)
    assert roles.apply([target], prefix) == granted  # again: same grants, no error
    url = migrated_db.url
    async with Database(load_settings({"DATABASE_URL": _as(url, prefix + "auth")})) as auth:
        user, _ = await create_user_with_profile(auth, email="r@example.com", name="R",
                                                 role="CUSTOMER", password_hash=PASSWORD_HASH)
    payments_url = _as(url, prefix + "payments")
    async with Database(load_settings({"DATABASE_URL": payments_url})) as payments:
        await payments.payments.create(user.id, Decimal("5.00"), type="payment")
        (report,) = await payments.reports.payment_reports()
        assert report.total_payments == 1
        with pytest.raises(DataAccessError, match="InsufficientPrivilege"):
            await payments.users.get(user.id)  # a whole user row is not the payments' to read
    _refused(payments_url, "SELECT password_hash FROM users")
    _refused(payments_url, "SELECT * FROM user_profiles")
    _refused(payments_url, "SELECT * FROM audit_logs")
    profile_url = _as(url, prefix + "profile")
    _refused(profile_url, f"INSERT INTO payments (user_id, amount, status, type) VALUES "
                          f"('{user.id}', 1, 'pending', 'payment')")
    _refused(profile_url, "UPDATE payments SET amount = 0")
    _refused(profile_url, "SELECT password_hash FROM users")
    _refused(_as(url, prefix + "admin"), "SELECT * FROM users")


async def test_per_service_roles(private_stores: Stores, prefix: str) -> None:
    settings = private_stores.settings()
    targets = [Target(s, settings.connection(private_stores.url(s)), (s,)) for s in SERVICES]
    granted = roles.apply(targets, prefix)
    assert not [g for g in granted if g.startswith("profile:") and "payments" in g]

    def service(name: str) -> Database:
        return Database(load_settings({"SHARED_DB_TOPOLOGY": "per-service", **{
            f"{s.upper()}_DATABASE_URL": _as(u, prefix + name)
            for s, u in private_stores.urls.items()}}))

    async with service("auth") as auth:
        user, _ = await create_user_with_profile(auth, email="r@example.com", name="R",
                                                 role="CUSTOMER", password_hash=PASSWORD_HASH)
        other, _ = await create_user_with_profile(auth, email="o@example.com", name="O",
                                                  role="VENDOR", password_hash=PASSWORD_HASH)
    async with service("payments") as payments:
        await payments.payments.create(user.id, Decimal("5.00"), type="payment")
        reports = await payments.reports.payment_reports()
        assert [r.total_payments for r in reports] == [0, 1]
    async with service("profile") as profile:
        await profile.profiles.update(user.id, bio="mine")
        with pytest.raises(DataAccessError, match="InsufficientPrivilege"):
            await profile.payments.create(user.id, Decimal("1.00"), type="payment")
    async with service("auth") as auth:
        with pytest.raises(ForeignKeyError):
            await auth.users.delete(user.id)
        await auth.users.delete(other.id)  # its profile goes too, across databases
        assert await auth.users.get(other.id) is None
    payments_on_auth = _as(private_stores.url("auth"), prefix + "payments")
    _refused(payments_on_auth, "SELECT password_hash FROM users")
    _refused(payments_on_auth, "UPDATE users SET role = 'ADMIN'")
    _refused(_as(private_stores.url("profile"), prefix + "payments"),
             "SELECT * FROM user_profiles")
    _refused(_as(private_stores.url("payments"), prefix + "profile"),
             "INSERT INTO payments (user_id, amount, status, type) VALUES "
             "(gen_random_uuid(), 1, 'pending', 'payment')")
