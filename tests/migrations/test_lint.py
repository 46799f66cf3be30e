"""The safety lint: rules read from the parse tree, acknowledgements, and deploy refusing a
flagged step on a table that holds rows (shared database and a service's own database)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.errors import MigrationError, UnsafeMigrationError
from shared_db.ops import migrate
from shared_db.ops.chains import CHAINS
from shared_db.ops.lint import lint_all, lint_steps
from shared_db.ops.lint_rules import ChainState, classify
from shared_db.ops.resolve import resolve
from shared_db.ops.targets import Target
from tests.catalog import snapshot
from tests.cli.test_migrate_cli import cli
from tests.conftest import DbFixture
from tests.migrations.extra import copy_with, migration


def rules(sql: str, state: ChainState | None = None) -> list[tuple[str, str | None]]:
    return [(f.rule, f.table or f.type_name) for f in classify(sql, state).findings]


@pytest.mark.parametrize(("sql", "expected"), [
    ("ALTER TABLE users ALTER COLUMN name TYPE varchar(300)", [("column-type-change", "users")]),
    ("ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid()",
     [("volatile-default", "users")]),
    ("ALTER TABLE users ADD COLUMN n bigserial", [("volatile-default", "users")]),
    ("ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT now() NOT NULL", []),
    ("ALTER TABLE users ADD COLUMN n int NOT NULL", [("add-column-not-null", "users")]),
    ("ALTER TABLE users ALTER COLUMN name SET NOT NULL", [("set-not-null", "users")]),
    ("create index users_name_idx on public.users (name)", [("create-index", "public.users")]),
    ("CREATE INDEX CONCURRENTLY users_name_idx ON users (name)", []),
    ("ALTER TABLE payments ADD CONSTRAINT p_fk FOREIGN KEY (user_id) REFERENCES users (id)",
     [("constraint-not-valid", "payments")]),
    ("ALTER TABLE payments ADD CONSTRAINT p_fk FOREIGN KEY (user_id) REFERENCES users (id) "
     "NOT VALID", []),
    ("ALTER TABLE users ADD CONSTRAINT u_name_key UNIQUE (name)",
     [("unique-constraint", "users")]),
    ("ALTER TABLE users ADD CONSTRAINT u_name_key UNIQUE USING INDEX users_name_idx", []),
    ("ALTER TYPE \"UserRole\" RENAME VALUE 'VENDOR' TO 'SELLER'",
     [("enum-value-renamed", "UserRole")]),
    ("ALTER TYPE \"UserRole\" RENAME TO \"UserRole_old\"; "
     "CREATE TYPE \"UserRole\" AS ENUM ('ADMIN', 'CUSTOMER'); "
     "ALTER TABLE users ALTER COLUMN role TYPE \"UserRole\" USING role::text::\"UserRole\"",
     [("enum-value-removed", "UserRole"), ("column-type-change", "users")]),
    ("DROP TABLE devices", [("drop-table", "devices")]),
    ("ALTER TABLE users DROP COLUMN name", [("drop-column", "users")]),
    ("ALTER TABLE users RENAME COLUMN name TO full_name", [("rename", "users")]),
    ("ALTER TABLE users RENAME TO accounts", [("rename", "users")]),
    # A table made by the same migration holds no rows: nothing about it is flagged.
    ("CREATE TABLE t (id int); CREATE INDEX t_idx ON t (id); "
     "ALTER TABLE t ADD CONSTRAINT t_fk FOREIGN KEY (id) REFERENCES users (id); "
     "ALTER TABLE t ADD COLUMN n int NOT NULL", []),
    ("UPDATE alembic_version_auth SET version_num = '2'", []),
])
def test_rules_from_the_parse_tree(sql: str, expected: list[tuple[str, str]]) -> None:
    assert rules(sql) == expected


def test_set_not_null_after_a_validated_check_in_an_earlier_migration() -> None:
    state = ChainState()
    assert rules("ALTER TABLE users ADD CONSTRAINT name_nn CHECK (name IS NOT NULL) NOT VALID",
                 state) == []
    assert rules("ALTER TABLE users VALIDATE CONSTRAINT name_nn", state) == []
    assert rules("ALTER TABLE users ALTER COLUMN name SET NOT NULL", state) == []
    assert rules("ALTER TABLE users ALTER COLUMN email SET NOT NULL", state) == [
        ("set-not-null", "users")]


def test_non_transactional_steps_are_recognised() -> None:
    parsed = classify("BEGIN; COMMIT; CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON users (name);"
                      " BEGIN; UPDATE alembic_version_auth SET version_num = '2'; COMMIT;")
    assert parsed.non_transactional and parsed.concurrent_indexes == ["i"]
    assert not classify("BEGIN; CREATE TABLE t (id int); COMMIT;").non_transactional


def test_the_package_migrations_lint_clean() -> None:
    lints = lint_all(PACKAGE_MIGRATIONS)
    assert len(lints) == 10 and not any(lint.open for lint in lints)
    acknowledged = [(lint.step.label, f.rule) for lint in lints for f in lint.findings]
    assert acknowledged == [("links:20260103000001_link_services", "constraint-not-valid")] * 2


@pytest.mark.parametrize(("extra", "message"), [
    ("lint_acknowledged = {'no-such-rule': 'x'}", "names unknown rule 'no-such-rule'"),
    ("lint_acknowledged = {'create-index': ' '}", "must give the reason it is safe"),
    ("lint_acknowledged = ['create-index']", "must be a dict of rule id to reason"),
])
def test_bad_acknowledgements_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_x": migration("pass", extra=extra)})
    with pytest.raises(MigrationError, match=message):
        lint_steps(folder, ("admin",))


INDEX = 'op.execute("CREATE INDEX system_config_value_idx ON system_config (value)")'
TOPOLOGIES = {"shared": CHAINS, "per-service": ("admin",)}


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_deploy_refuses_a_flagged_step_on_a_table_with_rows(
        empty_db: DbFixture, tmp_path: Path, topology: str) -> None:
    target = Target(topology, empty_db.connection, TOPOLOGIES[topology])
    folder = copy_with(tmp_path, {"admin/20261202000000_value_idx": migration(INDEX)})
    migrate.deploy(target, folder, limit=len(lint_steps(folder, target.chains)) - 1)
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('k', '1')")
    with pytest.raises(UnsafeMigrationError) as refused:
        migrate.deploy(target, folder)
    text = str(refused.value)
    for part in ("admin:20261202000000_value_idx", "[create-index]", "public.system_config",
                 "SHARE", "CONCURRENTLY", "lint_acknowledged", "Nothing of this migration"):
        assert part in text, text
    assert ("system_config", "system_config_value_idx") not in snapshot(empty_db.url)["indexes"]
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version_admin").fetchone() == (
            "20261201000000",)
        conn.execute("DELETE FROM system_config")
    assert [s.revision for s in migrate.deploy(target, folder).steps] == ["20261202000000"]


def test_an_acknowledged_rule_is_deployed_on_a_table_with_rows(
        migrated_db: DbFixture, tmp_path: Path) -> None:
    ack = "lint_acknowledged = {'create-index': 'system_config holds a handful of rows'}"
    folder = copy_with(tmp_path, {"admin/20261202000000_value_idx": migration(INDEX, extra=ack)})
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('k', '1')")
    assert len(migrate.deploy(migrated_db.target(), folder).steps) == 1
    assert ("system_config", "system_config_value_idx") in snapshot(migrated_db.url)["indexes"]


def test_an_enum_finding_is_refused_when_a_table_using_the_type_holds_rows(
        migrated_db: DbFixture, tmp_path: Path) -> None:
    rename = migration(
        """op.execute("ALTER TYPE \\"UserRole\\" RENAME VALUE 'VENDOR' TO 'SELLER'")""")
    folder = copy_with(tmp_path, {"auth/20261202000000_rename_vendor": rename})
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email, password_hash, name, role) "
                     "VALUES ('v@example.com', 'x', 'V', 'VENDOR')")
    with pytest.raises(UnsafeMigrationError, match=r"\[enum-value-renamed\].* on public\.users"):
        migrate.deploy(migrated_db.target(), folder)
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("DELETE FROM users")
    assert len(migrate.deploy(migrated_db.target(), folder).steps) == 1
    assert "SELLER" in snapshot(migrated_db.url)["enums"]["UserRole"]


def test_a_foreign_key_takes_a_weaker_lock_than_a_check() -> None:
    (fk,) = classify("ALTER TABLE payments ADD CONSTRAINT p_fk FOREIGN KEY (user_id) "
                     "REFERENCES users (id)").findings
    (check,) = classify("ALTER TABLE payments ADD CONSTRAINT c CHECK (amount > 0)").findings
    assert fk.lock_taken.startswith("SHARE ROW EXCLUSIVE") and check.lock_taken == (
        "ACCESS EXCLUSIVE")


def test_a_migration_failing_in_its_own_code_is_a_one_line_error(
        migrated_db: DbFixture, tmp_path: Path) -> None:
    broken = migration("""if op.get_context().as_sql:
    return
raise RuntimeError('the file is broken')""")
    folder = copy_with(tmp_path, {"admin/20261202000000_broken": broken})
    result = cli("migrate", "deploy", env={**migrated_db.env(),
                                           "SHARED_DB_MIGRATIONS_DIR": str(folder)})
    assert result.returncode == 4 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == (
        "error: could not apply admin:20261202000000_broken: RuntimeError: the file is broken "
        "(the database was left at the migration before it)")


def test_an_applied_migration_that_cannot_render_offline_blocks_only_itself(
        migrated_db: DbFixture, tmp_path: Path) -> None:
    online_only = migration("""if op.get_context().as_sql:
    raise RuntimeError('reads the database')""")
    later = migration('op.execute("CREATE TABLE later_one (id int)")',
                      revision="20261203000000", down_revision="20261202000000")
    folder = copy_with(tmp_path, {"admin/20261202000000_online_only": online_only})
    with pytest.raises(MigrationError, match="cannot render admin:20261202000000_online_only"):
        migrate.deploy(migrated_db.target(), folder)
    resolve([migrated_db.target()], folder, "admin:20261202000000", applied=True)
    (folder / "versions/admin/20261203000000_later_one.py").write_text(later)
    assert [s.revision for s in migrate.deploy(migrated_db.target(), folder).steps] == [
        "20261203000000"]
