"""Per-service topology: each service's chain in its own database, and no ``links`` chain."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from shared_db.config import PACKAGE_MIGRATIONS, load_settings
from shared_db.ops import migrate, status
from shared_db.ops.scratch import create_database, drop_database
from shared_db.ops.targets import resolve_targets
from shared_db.services import SERVICES
from shared_db.url import ConnectionSettings
from tests.catalog import snapshot
from tests.cli.test_migrate_cli import cli

OWNED = {service: tables | {f"{service}_idempotency_keys"} for service, tables in {
    "auth": {"users", "refresh_tokens", "devices", "sessions"},
    "payments": {"payments", "payment_transactions"},
    "admin": {"audit_logs", "system_config"}, "profile": {"user_profiles"}}.items()}


@pytest.fixture
def service_urls(server: ConnectionSettings) -> Iterator[dict[str, str]]:
    names = {s: f"sdbtest_{s}_{id(server) % 100000}" for s in SERVICES}
    urls = {s: create_database(server, n).libpq_url() for s, n in names.items()}
    yield urls
    for name in names.values():
        drop_database(server, name)


def test_each_service_gets_only_its_own_tables(service_urls: dict[str, str]) -> None:
    env = {"SHARED_DB_TOPOLOGY": "per-service",
           **{f"{s.upper()}_DATABASE_URL": url for s, url in service_urls.items()}}
    targets = resolve_targets(load_settings(env))
    assert [(t.name, t.chains) for t in targets] == [(s, (s,)) for s in SERVICES]
    for target in targets:
        migrate.deploy(target, PACKAGE_MIGRATIONS)
    for service, url in service_urls.items():
        tables = {t for t in snapshot(url)["tables"] if t != "payment_reports"}
        assert tables == OWNED[service], service
        assert "payment_reports" not in snapshot(url)["views"]
        fks = [k for k, v in snapshot(url)["constraints"].items() if v.startswith("FOREIGN")]
        assert all(table in OWNED[service] for table, _ in fks)
    for target in targets:
        result = status.status(target, PACKAGE_MIGRATIONS)
        assert result.up_to_date, (target.name, result.drift, result.pending)
    (undone,) = migrate.down(targets, PACKAGE_MIGRATIONS)
    assert [s.label for s in undone.steps] == ["payments:20261201000000_add_idempotency_keys"]
    assert "payments_idempotency_keys" not in snapshot(service_urls["payments"])["tables"]


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_seed_and_reset_act_on_each_service_database(service_urls: dict[str, str]) -> None:
    env = {**os.environ, "SHARED_DB_TOPOLOGY": "per-service",
           **{f"{s.upper()}_DATABASE_URL": url for s, url in service_urls.items()}}
    env.pop("DATABASE_URL", None)
    assert cli("migrate", "deploy", env=env).returncode == 0
    seeded = cli("db", "seed", env=env)
    assert seeded.returncode == 0, seeded.stderr
    counts = {(s, t): _count(service_urls[s], t) for s, t in (
        ("auth", "users"), ("profile", "user_profiles"), ("admin", "audit_logs"))}
    assert counts == {("auth", "users"): 3, ("profile", "user_profiles"): 3,
                      ("admin", "audit_logs"): 3}
    assert "Nothing to seed" in cli("db", "seed", env=env).stdout
    with psycopg.connect(service_urls["admin"], autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('gone', '1')")
    reset = cli("migrate", "reset", "--force", env=env)
    assert reset.returncode == 0, reset.stderr
    assert _count(service_urls["admin"], "system_config") == 0
    assert _count(service_urls["auth"], "users") == 3
    assert _count(service_urls["profile"], "user_profiles") == 3
    for service, url in service_urls.items():
        assert set(snapshot(url)["tables"]) == OWNED[service], service
