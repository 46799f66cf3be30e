"""``shared-db split``: a seeded shared database copied into four, compared table by table."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest

from shared_db.auth.batch import NewUser
from shared_db.client import Database
from shared_db.config import Settings, load_settings
from shared_db.errors import ConfigError, MigrationError
from shared_db.ops import split as splitting
from shared_db.ops.scratch import create_database, drop_database
from shared_db.ops.seeding import run_seed
from shared_db.services import SERVICES
from shared_db.url import ConnectionSettings
from tests.catalog import snapshot
from tests.cli.test_migrate_cli import cli
from tests.conftest import DbFixture
from tests.factories import PASSWORD_HASH
from tests.state import digest

OWNED = {service: tables | {f"{service}_idempotency_keys"} for service, tables in {
    "auth": {"users", "refresh_tokens", "devices", "sessions"},
    "payments": {"payments", "payment_transactions"},
    "admin": {"audit_logs", "system_config"}, "profile": {"user_profiles"}}.items()}


async def _fill(url: str) -> None:
    async with Database(load_settings({"DATABASE_URL": url})) as db:
        await db.users.create_many([NewUser(email=f"bulk{i}@example.com", name=f"B{i}",
                                            role="CUSTOMER", password_hash=PASSWORD_HASH)
                                    for i in range(700)])
        customer = await db.users.get_by_email("customer@test.com")
        assert customer is not None
        for k in range(40):
            payment = await db.payments.create(customer.id, Decimal(k) + Decimal("0.25"),
                                               type="payment", metadata={"k": k})
            if k % 3 == 0:
                await db.payment_status.transition(payment.id, "initiated")
        await db.tokens.issue(customer.id)
        device = await db.devices.register(customer.id, "phone-1")
        await db.sessions.open(customer.id, device.id)
        await db.config.set("maintenance", {"on": False})
        await db.users.soft_delete((await db.users.get_by_email("bulk7@example.com")).id)


@pytest.fixture
def source(migrated_db: DbFixture) -> DbFixture:
    run_seed(migrated_db.settings())
    asyncio.run(_fill(migrated_db.url))
    return migrated_db


@pytest.fixture
def targets(server: ConnectionSettings, migrated_db: DbFixture) -> Iterator[dict[str, str]]:
    base = migrated_db.connection.database
    made = {s: create_database(server, f"{base}_{s}") for s in SERVICES}
    yield {s: c.libpq_url() for s, c in made.items()}
    for conn in made.values():
        drop_database(server, conn.database)


def _settings(source: DbFixture, targets: dict[str, str]) -> Settings:
    return load_settings({"DATABASE_URL": source.url, **{
        f"{s.upper()}_DATABASE_URL": url for s, url in targets.items()}})


def _assert_same(source: DbFixture, targets: dict[str, str]) -> None:
    everything = digest(source.url)
    for service, url in targets.items():
        assert set(snapshot(url)["tables"]) == OWNED[service]
        assert digest(url) == {t: everything[t] for t in OWNED[service]}, service


def test_split_copies_every_row_and_leaves_the_source_alone(
        source: DbFixture, targets: dict[str, str]) -> None:
    before, schema = digest(source.url), snapshot(source.url, version_tables=True)
    seen: list[tuple[str, str, int, int]] = []
    report = splitting.split(_settings(source, targets), batch_size=128,
                             progress=lambda *step: seen.append(step))
    assert all(item.verified for item in report.tables)
    assert digest(source.url) == before
    assert snapshot(source.url, version_tables=True) == schema
    _assert_same(source, targets)
    users = [step for step in seen if step[1] == "users"]
    assert len(users) == 6 and users[-1][2] == users[-1][3] == 703  # 128-row batches
    # Running it again changes nothing and still verifies.
    splitting.split(_settings(source, targets), batch_size=500)
    _assert_same(source, targets)


def test_split_verifies_when_the_servers_show_time_in_other_zones(
        source: DbFixture, targets: dict[str, str]) -> None:
    # Row text (and so its md5) of a timestamptz depends on the session's zone: the
    # checksums must be taken in one pinned zone on both sides.
    for url, zone in [(source.url, "America/St_Johns"),
                      *((url, "Pacific/Chatham") for url in targets.values())]:
        with psycopg.connect(url, autocommit=True) as conn:
            name = conn.execute("SELECT current_database()").fetchone()[0]
            conn.execute(f'ALTER DATABASE "{name}" SET timezone = \'{zone}\'')
    report = splitting.split(_settings(source, targets))
    assert all(item.verified for item in report.tables)
    _assert_same(source, targets)


async def test_assembled_report_equals_the_shared_view(source: DbFixture,
                                                       targets: dict[str, str]) -> None:
    await asyncio.to_thread(splitting.split, _settings(source, targets))
    per_service = load_settings({"SHARED_DB_TOPOLOGY": "per-service", **{
        f"{s.upper()}_DATABASE_URL": url for s, url in targets.items()}})
    async with Database(source.settings()) as shared, Database(per_service) as split_db:
        for role in (None, "CUSTOMER", "ADMIN", "VENDOR"):
            view = await shared.reports.payment_reports(role)
            assembled = await split_db.reports.payment_reports(role)
            assert assembled == view, role
        everyone = await split_db.reports.payment_reports()
    assert len(everyone) == 703  # soft-deleted users included, as in the view
    (customer,) = [r for r in everyone if r.email == "customer@test.com"]
    assert customer.total_payments == 40 and customer.total_amount == Decimal("790.00")


def test_interrupted_split_resumes(source: DbFixture, targets: dict[str, str]) -> None:
    batches = 0

    def stop_after_three(*_: object) -> None:
        nonlocal batches
        batches += 1
        if batches == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        splitting.split(_settings(source, targets), batch_size=100, progress=stop_after_three)
    with psycopg.connect(targets["auth"]) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (300,)
    report = splitting.split(_settings(source, targets), batch_size=100)
    assert all(item.verified for item in report.tables)
    _assert_same(source, targets)


def test_a_target_changed_by_hand_fails_verification(source: DbFixture,
                                                     targets: dict[str, str]) -> None:
    splitting.split(_settings(source, targets))
    with psycopg.connect(targets["admin"], autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('stray', 'true')")
    with pytest.raises(MigrationError, match=r"admin\.system_config differs"):
        splitting.split(_settings(source, targets))


def test_dry_run_prints_the_plan_and_writes_nothing(source: DbFixture,
                                                    targets: dict[str, str]) -> None:
    env = {**source.env(), **{f"{s.upper()}_DATABASE_URL": u for s, u in targets.items()}}
    result = cli("split", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "payments.user_id -> users.id (on delete restrict)" in result.stdout
    assert "user_profiles.user_id -> users.id (on delete cascade)" in result.stdout
    assert "users: 703 row(s)" in result.stdout
    assert all(snapshot(url)["tables"] == {} for url in targets.values())


@pytest.mark.parametrize(("change", "field"), [
    ({"PROFILE_DATABASE_URL": None}, "PROFILE_DATABASE_URL"),
    ({"AUTH_DATABASE_URL": "source"}, "AUTH_DATABASE_URL"),
    ({"DATABASE_URL": None}, "DATABASE_URL"),
])
def test_bad_configuration_is_refused_before_anything(
        source: DbFixture, targets: dict[str, str], change: dict, field: str) -> None:
    env = {"DATABASE_URL": source.url,
           **{f"{s.upper()}_DATABASE_URL": u for s, u in targets.items()}}
    for name, value in change.items():
        if value is None:
            env.pop(name)
        else:
            env[name] = source.url
    with pytest.raises(ConfigError) as caught:
        splitting.split(load_settings(env))
    assert caught.value.field == field
    assert all(snapshot(url)["tables"] == {} for url in targets.values())


def _respelled(url: str) -> str:
    """The same database in another spelling: another application_name."""
    return f"{url}{'&' if '?' in url else '?'}application_name=respelled"


def test_a_target_naming_the_source_in_another_spelling_is_refused(
        source: DbFixture, targets: dict[str, str]) -> None:
    for name, url, blamed in (
            ("AUTH_DATABASE_URL", _respelled(source.url), {"AUTH_DATABASE_URL"}),
            ("ADMIN_DATABASE_URL", _respelled(targets["payments"]),
             {"ADMIN_DATABASE_URL", "PAYMENTS_DATABASE_URL"})):  # the later of the two
        env = {"DATABASE_URL": source.url,
               **{f"{s.upper()}_DATABASE_URL": u for s, u in targets.items()}, name: url}
        with pytest.raises(ConfigError) as caught:
            splitting.split(load_settings(env))
        assert caught.value.field in blamed and "same database" in caught.value.rule
    assert all(snapshot(url)["tables"] == {} for url in targets.values())
