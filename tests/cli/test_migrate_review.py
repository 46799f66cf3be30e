"""``migrate sql | deploy --dry-run | resolve | baseline | lint`` and ``dev --create-only`` on
real databases, shared and per service."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest
from rich.console import Console

from shared_db.cli import main
from shared_db.cli.render_review import print_sql
from shared_db.ops import autogen
from shared_db.ops.scratch import create_database, drop_database
from shared_db.services import SERVICES
from shared_db.url import ConnectionSettings
from tests.catalog import snapshot
from tests.cli.test_migrate_cli import cli
from tests.conftest import DbFixture
from tests.migrations.extra import copy_with, migration
from tests.ops.test_autogen import _models_with

NEW_TABLE = migration('op.execute("CREATE TABLE resolved_by_hand (id int)")',
                      'op.execute("DROP TABLE resolved_by_hand")')


@pytest.fixture
def per_service(server: ConnectionSettings) -> Iterator[dict[str, str]]:
    """The environment of a per-service topology over four new empty databases."""
    names = {s: f"sdbtest_{s}_{secrets.token_hex(4)}" for s in SERVICES}
    urls = {s: create_database(server, n).libpq_url() for s, n in names.items()}
    yield {"SHARED_DB_TOPOLOGY": "per-service",
           **{f"{s.upper()}_DATABASE_URL": u for s, u in urls.items()}}
    for name in names.values():
        drop_database(server, name)


def _env(base: dict[str, str], **extra: str) -> dict[str, str]:
    env = {**os.environ, **base, **extra}
    if base.get("SHARED_DB_TOPOLOGY") == "per-service":
        env.pop("DATABASE_URL", None)
    return env


def _ok(*args: str, env: dict[str, str], code: int = 0) -> str:
    """The command run in this process (as ``shared-db`` would, without its start-up time)
    in environment ``env``; its stdout."""
    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            returned = main(list(args))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert returned == code, err.getvalue()
    return out.getvalue()


def test_sql_shows_pending_migrations_in_order_and_applies_nothing(empty_db: DbFixture) -> None:
    out = _ok("migrate", "sql", env=empty_db.env())
    labels = [line[3:] for line in out.splitlines() if line.startswith("-- ") and ":" in line
              and "target" not in line]
    assert labels[0] == "auth:20260101000000_init" and len(labels) == 10
    assert labels.index("links:20260103000001_link_services") == 5
    assert "CREATE TABLE users" in out and "INSERT INTO alembic_version_auth" in out
    assert "UPDATE alembic_version_auth SET version_num='20260103000000'" in out
    assert snapshot(empty_db.url, version_tables=True)["tables"] == {}
    doc = json.loads(_ok("migrate", "sql", "--from", "auth:20260103000000",
                         "--to", "links:20260103000001", "--json", env=empty_db.env()))
    (target,) = doc["targets"]
    assert [m["migration"] for m in target["migrations"]] == ["links:20260103000001_link_services"]
    assert "payments_user_id_fkey" in target["migrations"][0]["sql"]


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "nope"], "--from: unknown migration 'nope'"),
    (["--to", "auth:29990101000000"], "--to: unknown migration"),
    (["--from", "links:20260103000001", "--to", "auth:20260101000000"],
     "--to 'auth:20260101000000' must come after --from"),
    (["--to", "20260101000000"], "--to: migration '20260101000000' is ambiguous"),
])
def test_sql_bad_bounds_are_one_line_errors(empty_db: DbFixture, args: list[str],
                                            message: str) -> None:
    result = cli("migrate", "sql", *args, env=empty_db.env())
    assert result.returncode == 4
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line, line


def test_sql_per_service_has_each_service_chain_and_no_links(per_service: dict[str, str]) -> None:
    doc = json.loads(_ok("migrate", "sql", "--json", env=_env(per_service)))
    chains = {t["target"]: {m["migration"].split(":")[0] for m in t["migrations"]}
              for t in doc["targets"]}
    assert chains == {s: {s} for s in SERVICES}
    out = _ok("migrate", "deploy", "--dry-run", env=_env(per_service))
    assert "9 migration(s) would be applied; nothing was changed" in out
    assert "-- target payments" in out and "links:" not in out
    assert all(snapshot(per_service[f"{s.upper()}_DATABASE_URL"], version_tables=True)[
        "tables"] == {} for s in SERVICES)
    assert _ok("migrate", "sql", "--to", "base", env=_env(per_service)).count("0 migration(s)") == 4


def test_deploy_dry_run_prints_sql_and_lint_and_applies_nothing(migrated_db: DbFixture,
                                                                tmp_path: Path) -> None:
    index = migration('op.execute("CREATE INDEX system_config_value_idx ON system_config '
                      '(value)")')
    folder = copy_with(tmp_path, {"admin/20261202000000_value_idx": index})
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('k', '1')")
    before = snapshot(migrated_db.url, version_tables=True)
    out = _ok("migrate", "deploy", "--dry-run", code=4,  # the exit of the deploy it previews
              env={**migrated_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder)})
    assert "CREATE INDEX system_config_value_idx ON system_config (value)" in out
    assert "unsafe admin:20261202000000_value_idx create-index on system_config" in out
    assert "deploy would refuse admin:20261202000000_value_idx" in out
    assert ("deploy would apply 0 of the 1 pending migration(s), then refuse "
            "admin:20261202000000_value_idx and stop; nothing was changed") in out
    assert snapshot(migrated_db.url, version_tables=True) == before


def _version(url: str, chain: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT version_num FROM alembic_version_{chain}").fetchone()
    return None if row is None else str(row[0])


def test_resolve_applied_and_rolled_back_run_nothing(migrated_db: DbFixture,
                                                    tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_by_hand": NEW_TABLE})
    env = {**migrated_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder)}
    doc = json.loads(_ok("migrate", "resolve", "--applied", "admin:20261202000000", "--json",
                         env=env))
    assert doc == {"target": "shared", "migration": "admin:20261202000000_by_hand",
                   "state": "applied"}
    assert _version(migrated_db.url, "admin") == "20261202000000"
    assert "resolved_by_hand" not in snapshot(migrated_db.url)["tables"]
    out = _ok("migrate", "resolve", "--rolled-back", "20261202000000_by_hand", env=env)
    assert "admin:20261202000000_by_hand recorded as rolled back on shared" in out
    assert _version(migrated_db.url, "admin") == "20261201000000"


@pytest.mark.parametrize(("args", "message", "code"), [
    (["--applied", "auth:20260101000000"], "only the next pending migration", 4),
    (["--rolled-back", "auth:20260101000000"], "only the newest applied migration", 4),
    (["--applied", "nope:20260101000000"], "--applied: unknown migration", 4),
    (["--rolled-back", "20261201000000"], "--rolled-back: migration '20261201000000' is "
                                          "ambiguous", 4),
    (["--applied", "auth:20260101000000", "--rolled-back", "auth:20260101000000"],
     "give exactly one of them", 2),  # a bad argument, not a migration problem
    ([], "give exactly one of them", 2),
])
def test_resolve_refuses_bad_requests_and_stamps_nothing(migrated_db: DbFixture,
                                                        args: list[str], message: str,
                                                        code: int) -> None:
    before = snapshot(migrated_db.url, version_tables=True)
    with psycopg.connect(migrated_db.url) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version_auth").fetchall()
    result = cli("migrate", "resolve", *args, env=migrated_db.env())
    assert result.returncode == code
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line, line
    assert snapshot(migrated_db.url, version_tables=True) == before
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version_auth").fetchall() == versions


def test_resolve_per_service_stamps_the_owning_database(per_service: dict[str, str]) -> None:
    env = _env(per_service)
    _ok("migrate", "deploy", env=env)
    _ok("migrate", "resolve", "--rolled-back", "payments:20261201000000", env=env)
    assert _version(per_service["PAYMENTS_DATABASE_URL"], "payments") == "20260102000000"
    assert _version(per_service["AUTH_DATABASE_URL"], "auth") == "20261201000000"
    assert "payments_idempotency_keys" in snapshot(per_service["PAYMENTS_DATABASE_URL"])[
        "tables"]  # nothing was run


def _forget_history(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for (table,) in conn.execute("SELECT tablename FROM pg_tables "
                                     "WHERE tablename LIKE 'alembic_version_%'").fetchall():
            conn.execute(f'DROP TABLE "{table}"')


def test_baseline_stamps_a_proven_schema(migrated_db: DbFixture) -> None:
    _forget_history(migrated_db.url)
    assert cli("migrate", "status", env=migrated_db.env()).returncode == 1
    doc = json.loads(_ok("migrate", "baseline", "--json", env=migrated_db.env()))
    assert doc["baselined"] is True and len(doc["targets"][0]["stamped"]) == 5
    assert _ok("migrate", "status", env=migrated_db.env())
    again = cli("migrate", "baseline", env=migrated_db.env())
    assert again.returncode == 4 and "already records migrations" in again.stderr


def test_baseline_refuses_with_the_differences(migrated_db: DbFixture) -> None:
    _forget_history(migrated_db.url)
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("DROP INDEX users_role_idx")
        conn.execute("ALTER TABLE payments ADD COLUMN hand_made int")
    doc = json.loads(_ok("migrate", "baseline", "--json", env=migrated_db.env(), code=4))
    assert doc["baselined"] is False and doc["targets"][0]["stamped"] == []
    assert doc["targets"][0]["differences"] == [
        "column payments.hand_made: in the database, not made by the migrations",
        "index users_role_idx: made by the migrations, missing in the database"]
    out = _ok("migrate", "baseline", env=migrated_db.env(), code=4)
    assert "Not baselined" in out and "users_role_idx" in out
    assert not [t for t in snapshot(migrated_db.url, version_tables=True)["tables"]
                if t.startswith("alembic_version_")]


def test_baseline_per_service(per_service: dict[str, str]) -> None:
    env = _env(per_service)
    _ok("migrate", "deploy", env=env)
    for service in SERVICES:
        _forget_history(per_service[f"{service.upper()}_DATABASE_URL"])
    doc = json.loads(_ok("migrate", "baseline", "--json", env=env))
    assert {t["target"]: t["stamped"] for t in doc["targets"]} == {
        s: [f"{s}:20261201000000_add_idempotency_keys"] for s in SERVICES}
    assert _ok("migrate", "status", env=env)


def test_lint_exit_codes(tmp_path: Path, empty_db: DbFixture) -> None:
    assert json.loads(_ok("migrate", "lint", "--json", env=empty_db.env()))["ok"] is True
    drop = migration('op.execute("ALTER TABLE users DROP COLUMN name")')
    folder = copy_with(tmp_path, {"auth/20261202000000_drop_name": drop})
    env = {**empty_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder)}
    doc = json.loads(_ok("migrate", "lint", "--json", env=env, code=1))
    (finding,) = [f for m in doc["migrations"] for f in m["findings"] if not f["acknowledged"]]
    assert finding["rule"] == "drop-column" and finding["table"] == "users"
    assert finding["lock"] == "ACCESS EXCLUSIVE" and "release code" in finding["recipe"]
    assert "1 unacknowledged finding(s)" in _ok("migrate", "lint", env=env, code=1)


def test_dev_create_only_writes_and_prints_but_applies_nothing(migrated_db: DbFixture,
                                                               tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {})
    before = snapshot(migrated_db.url, version_tables=True)
    result = autogen.dev(migrated_db.target(), folder, "add_nickname", _models_with("nickname"),
                         create_only=True)
    (created,) = result.created
    assert result.applied == [] and result.files[0].exists()
    assert "ALTER TABLE users ADD COLUMN nickname TEXT" in result.sql
    assert f"version_num='{created.revision}'" in result.sql
    assert [lint.step for lint in result.lints] == [created] and not result.lints[0].findings
    assert snapshot(migrated_db.url, version_tables=True) == before


@pytest.mark.parametrize("terminal", [False, True])
def test_sql_is_printed_whole_at_any_width(terminal: bool) -> None:
    sql = ("UPDATE alembic_version_auth SET version_num='20261202000000' WHERE "
           "alembic_version_auth.version_num = '20261201000000';\n")
    out = io.StringIO()
    print_sql(Console(file=out, width=30, force_terminal=terminal, color_system=None), sql)
    assert " ".join(out.getvalue().split()) == " ".join(sql.split())


def test_baseline_without_a_scratch_database_is_a_one_line_error(migrated_db: DbFixture) -> None:
    role = f"sdbtest_nocreate_{secrets.token_hex(3)}"
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        _forget_history(migrated_db.url)
        user = psycopg.conninfo.conninfo_to_dict(migrated_db.url)["user"]
        url = migrated_db.url.replace(f"//{user}@", f"//{role}@", 1)
        assert url != migrated_db.url
        result = cli("migrate", "baseline", env={**migrated_db.env(), "DATABASE_URL": url})
    finally:
        with psycopg.connect(migrated_db.url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE "{role}"')
    assert result.returncode == 4, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "baseline builds the migrations in a scratch database" in line, line
    assert "needs CREATEDB" in line


def test_dev_create_only_applies_not_even_pending_migrations(empty_db: DbFixture) -> None:
    out = _ok("migrate", "dev", "--name", "nothing_new", "--create-only", env=empty_db.env())
    assert "no migration was created" in out
    assert snapshot(empty_db.url, version_tables=True)["tables"] == {}


@pytest.mark.parametrize(("args", "message"), [
    (["migrate", "sql", "--frm", "x"], "No such option: --frm"),
    (["migrate", "resolve", "--applied"], "Option '--applied' requires an argument"),
    (["migrate", "deploy", "--dry-run", "now"], "unexpected extra argument"),
    (["migrate", "baseline", "--force"], "No such option: --force"),
])
def test_bad_flags_are_refused_before_anything_runs(migrated_db: DbFixture, args: list[str],
                                                   message: str) -> None:
    before = snapshot(migrated_db.url, version_tables=True)
    result = cli(*args, env=migrated_db.env())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr
    assert f"(see 'shared-db {' '.join(args[:2])} --help')" in result.stderr, result.stderr
    assert snapshot(migrated_db.url, version_tables=True) == before
