"""Migration folders that break the rules: transaction statements of a migration's own, revision
ids out of order or not timestamps, files raising anything at import, a foreign env.py or an
unknown chain folder. Each is one line on stderr with its exit code, never a silent success."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from shared_db.cli import main
from shared_db.config import PACKAGE_MIGRATIONS, load_settings
from shared_db.errors import ConfigError, MigrationError, UnsafeMigrationError
from shared_db.ops import migrate
from shared_db.ops.chains import CHAINS
from shared_db.ops.history import all_steps, chain_steps
from shared_db.ops.lint import lint_steps
from shared_db.ops.lint_rules import classify
from shared_db.ops.loading import migration_code
from shared_db.ops.offline import step_sql
from tests.catalog import snapshot
from tests.conftest import DbFixture
from tests.migrations.extra import HEAD, NEXT, copy_with, migration

LATER = "20261203000000"
HALF = migration('op.execute("CREATE TABLE half_applied (id int)")\n'
                 'op.execute("COMMIT")\n'
                 'op.execute("SELECT 1 / 0")', 'op.execute("DROP TABLE IF EXISTS half_applied")')


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str,
         folder: Path | None = None, db: DbFixture | None = None) -> tuple[int, str, str]:
    """``shared-db ARGS`` in this process: exit code, stdout, stderr."""
    if folder is not None:
        monkeypatch.setenv("SHARED_DB_MIGRATIONS_DIR", str(folder))
    if db is not None:
        monkeypatch.setenv("DATABASE_URL", db.url)
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _version(url: str, chain: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT version_num FROM alembic_version_{chain}").fetchone()
    return None if row is None else str(row[0])


# -- transaction statements of the migration's own ----------------------------------------------

@pytest.mark.parametrize("statement", [
    "COMMIT", "BEGIN", "ROLLBACK", "END", "ABORT", "SAVEPOINT s", "RELEASE SAVEPOINT s",
    "ROLLBACK TO SAVEPOINT s", "commit", "START TRANSACTION", "COMMIT AND CHAIN",
    "PREPARE TRANSACTION 'x'"])
def test_a_transaction_statement_in_a_migration_is_a_lint_error(statement: str) -> None:
    parsed = classify(f"BEGIN; CREATE TABLE t (id int); {statement}; SELECT 1; "
                      "UPDATE alembic_version_auth SET version_num = '2'; COMMIT;")
    assert [f.rule for f in parsed.findings] == ["transaction-control"]
    assert parsed.findings[0].statement in (statement, "COMMIT", "BEGIN")


def test_alembics_own_transaction_and_autocommit_blocks_are_not_flagged() -> None:
    assert classify("BEGIN; CREATE TABLE t (id int); COMMIT; CREATE INDEX CONCURRENTLY i ON t "
                    "(id); BEGIN; UPDATE alembic_version_auth SET version_num = '2'; "
                    "COMMIT;").findings == []


def test_lint_fails_on_a_migration_that_commits(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {f"admin/{NEXT}_half": HALF})
    (lint,) = lint_steps(folder, ("admin",), only={all_steps(folder, ("admin",))[-1]})
    assert [f.rule for f in lint.open] == ["transaction-control"]
    code, out, _ = _run(monkeypatch, capsys, "migrate", "lint", folder=folder)
    assert code == 1 and "transaction-control" in out and f"admin:{NEXT}_half" in out
    assert "on the migration's own transaction" in out and "on any database" in out


def test_transaction_control_cannot_be_acknowledged(tmp_path: Path) -> None:
    ack = "lint_acknowledged = {'transaction-control': 'I know what I am doing'}"
    folder = copy_with(tmp_path, {f"admin/{NEXT}_half": migration('op.execute("COMMIT")',
                                                                  extra=ack)})
    with pytest.raises(MigrationError, match="'transaction-control', which cannot be "
                                             "acknowledged"):
        lint_steps(folder, ("admin",))


def test_deploy_refuses_a_migration_that_commits_before_running_anything(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        migrated_db: DbFixture, tmp_path: Path) -> None:
    fine = migration('op.execute("CREATE TABLE fine_one (id int)")')
    half = HALF.replace(f"revision = {NEXT!r}", f"revision = {LATER!r}").replace(
        f"down_revision = {HEAD!r}", f"down_revision = {NEXT!r}")
    folder = copy_with(tmp_path, {f"admin/{NEXT}_fine": fine, f"admin/{LATER}_half": half})
    code, _, err = _run(monkeypatch, capsys, "migrate", "deploy", folder=folder, db=migrated_db)
    assert code == 4 and err.count("\n") == 1, err
    assert err.startswith(f"error: refusing admin:{LATER}_half: [transaction-control] 'COMMIT'")
    assert "nothing was applied" in err
    tables = snapshot(migrated_db.url)["tables"]
    assert "half_applied" not in tables and "fine_one" not in tables
    assert _version(migrated_db.url, "admin") == HEAD
    code, _, err = _run(monkeypatch, capsys, "migrate", "deploy", "--dry-run")
    assert code == 4 and f"refusing admin:{LATER}_half" in err
    with pytest.raises(UnsafeMigrationError):  # a deploy that skips the row checks too
        migrate.deploy(migrated_db.target(), folder, run=migrate.StepRun(check_rows=False))


def test_a_failed_autocommit_step_says_what_stays_applied(
        migrated_db: DbFixture, tmp_path: Path) -> None:
    step = migration("""with op.get_context().autocommit_block():
    op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_logs_ua_idx ON audit_logs "
               "(user_agent)")
if not op.get_context().as_sql:
    op.execute("SELECT 1 / 0")""")
    folder = copy_with(tmp_path, {f"admin/{NEXT}_index_then_fail": step})
    with pytest.raises(MigrationError) as failed:
        migrate.deploy(migrated_db.target(), folder)
    assert "division by zero" in str(failed.value)
    assert "what it ran outside a transaction stays applied" in str(failed.value)
    assert _version(migrated_db.url, "admin") == HEAD
    assert ("audit_logs", "audit_logs_ua_idx") in snapshot(migrated_db.url)["indexes"]


# -- revision ids ---------------------------------------------------------------------------------

def _older_than_parent(tmp_path: Path) -> Path:
    """auth/20200101000000_a.py after init, and add_sessions repointed to it."""
    folder = copy_with(tmp_path, {"auth/20200101000000_a": migration(
        'op.execute("CREATE INDEX devices_early_idx ON devices (user_id)")',
        revision="20200101000000", down_revision="20260101000000")})
    sessions = folder / "versions/auth/20260103000000_add_sessions.py"
    text = sessions.read_text()
    assert 'down_revision: str | None = "20260101000000"' in text
    sessions.write_text(text.replace('down_revision: str | None = "20260101000000"',
                                     'down_revision: str | None = "20200101000000"'))
    return folder


def test_a_revision_not_after_its_parent_is_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        migrated_db: DbFixture, tmp_path: Path) -> None:
    folder = _older_than_parent(tmp_path)
    with pytest.raises(MigrationError, match=r"migration 20200101000000_a.py: revision "
                                             r"'20200101000000' is not greater than its "
                                             r"down_revision '20260101000000'"):
        chain_steps(folder, "auth")
    for args in (["migrate", "sql", "--from", "base"], ["migrate", "status"],
                 ["migrate", "deploy"], ["migrate", "lint"]):
        code, out, err = _run(monkeypatch, capsys, *args, folder=folder, db=migrated_db)
        assert code == 4 and out == "" and "20200101000000_a.py" in err, (args, out, err)
        assert "UTC timestamps" in err and err.count("\n") == 1


@pytest.mark.parametrize(("revision", "down"), [
    ("abc", HEAD), ("2026120200000", HEAD), ("202612020000001", HEAD), ("20261302000000", HEAD),
    ("20261232000000", HEAD), (" 20261202000000", HEAD), (NEXT, "head"),
])
def test_a_revision_id_that_is_no_utc_timestamp_is_refused(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        revision: str, down: str) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_odd": migration(
        "pass", revision=revision, down_revision=down)})
    with pytest.raises(MigrationError, match=r"20261202000000_odd\.py: .* is not a revision "
                                             r"id; revision ids are UTC timestamps"):
        chain_steps(folder, "admin")
    code, _, err = _run(monkeypatch, capsys, "migrate", "lint", folder=folder)
    assert code == 4 and "20261202000000_odd.py" in err


def test_an_unknown_parent_is_named_as_such(tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_orphan": migration(
        "pass", down_revision="19990101000000")})
    with pytest.raises(MigrationError) as refused:
        chain_steps(folder, "admin")
    text = str(refused.value)
    assert "20261202000000_orphan.py" in text and "'19990101000000' is unknown" in text
    assert "conflict" not in text


def test_two_files_with_one_revision_id_are_refused(tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_one": migration("pass"),
                                  "admin/20261202000000_two": migration("pass")})
    with pytest.raises(MigrationError, match=r"20261202000000_one\.py and "
                                             r"20261202000000_two\.py of chain 'admin' have "
                                             r"the same revision id"):
        chain_steps(folder, "admin")


def test_the_package_migrations_still_load() -> None:
    assert len(all_steps(PACKAGE_MIGRATIONS, CHAINS)) == 10


# -- files raising at import ---------------------------------------------------------------------

RAISING = ["raise SystemExit(0)", "raise SystemExit(3)", "import sys; sys.exit()",
           "raise KeyboardInterrupt", "raise GeneratorExit", "raise ValueError('bad file')"]


@pytest.mark.parametrize("raising", RAISING)
@pytest.mark.parametrize("command", [["migrate", "deploy"], ["migrate", "lint"],
                                     ["migrate", "sql", "--from", "base"]])
def test_a_migration_raising_at_import_is_a_one_line_error_naming_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        migrated_db: DbFixture, tmp_path: Path, raising: str, command: list[str]) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_broken": migration("pass",
                                                                           extra=raising)})
    code, out, err = _run(monkeypatch, capsys, *command, folder=folder, db=migrated_db)
    assert code == 4 and err.count("\n") == 1, (code, out, err)
    broken = (folder / "versions/admin/20261202000000_broken.py").resolve()
    assert err.startswith(f"error: cannot load {broken}: it raised "), err
    assert "20260101000000_init" not in err
    assert _version(migrated_db.url, "admin") == HEAD


def test_a_migration_raising_system_exit_when_applied_is_an_error(
        migrated_db: DbFixture, tmp_path: Path) -> None:
    body = "if op.get_context().as_sql:\n    return\nraise SystemExit(0)"
    folder = copy_with(tmp_path, {"admin/20261202000000_exits": migration(body)})
    with pytest.raises(MigrationError, match=r"could not apply admin:20261202000000_exits: "
                                             r"SystemExit: 0 \(the database was left at"):
        migrate.deploy(migrated_db.target(), folder)
    assert _version(migrated_db.url, "admin") == HEAD


@pytest.mark.parametrize("raising", ["raise SystemExit(0)", "raise KeyboardInterrupt"])
def test_an_env_py_raising_at_import_is_an_error_naming_it(tmp_path: Path,
                                                           raising: str) -> None:
    folder = copy_with(tmp_path, {})
    (folder / "env.py").write_text(raising + "\n")
    step = all_steps(folder, ("admin",))[0]
    env = re.escape(str(folder.resolve() / "env.py"))
    with pytest.raises(MigrationError, match=f"cannot load {env}: it raised .*restore the "
                                             "package's env.py"):
        step_sql(folder, step)


def test_a_failure_inside_the_alembic_run_is_not_blamed_on_env_py(tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_x": migration(
        "raise RuntimeError('in upgrade')")})
    with pytest.raises(MigrationError, match="cannot render admin:20261202000000_x as SQL "
                                             "without a database: RuntimeError: in upgrade"):
        step_sql(folder, all_steps(folder, ("admin",))[-1])


def test_a_real_ctrl_c_still_interrupts(tmp_path: Path) -> None:
    def failed(exc: BaseException) -> MigrationError:
        return MigrationError("not this")

    with pytest.raises(KeyboardInterrupt), migration_code(tmp_path, failed):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_a_migration_is_imported_stops_the_command(tmp_path: Path) -> None:
    started = tmp_path / "started"
    slow = f"import pathlib, time\npathlib.Path({str(started)!r}).touch()\ntime.sleep(60)"
    folder = copy_with(tmp_path, {"admin/20261202000000_slow": migration("pass", extra=slow)})
    env = {**os.environ, "SHARED_DB_MIGRATIONS_DIR": str(folder)}
    proc = subprocess.Popen([sys.executable, "-m", "shared_db", "migrate", "lint"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # The command line's own answer to Ctrl-C, not a migration error (4).
    assert proc.returncode in (-signal.SIGINT, 130), (proc.returncode, err)
    assert "cannot load" not in err


# -- the resolve messages -------------------------------------------------------------------------

def test_resolving_an_applied_head_as_applied_says_it_is_already_applied(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        migrated_db: DbFixture) -> None:
    code, _, err = _run(monkeypatch, capsys, "migrate", "resolve", "--applied",
                        f"auth:{HEAD}", db=migrated_db)
    assert code == 4, err
    assert f"auth:{HEAD}_add_idempotency_keys is already applied (chain auth is at {HEAD})" in err
    assert _run(monkeypatch, capsys, "migrate", "down")[0] == 0  # payments' head, the newest
    code, _, err = _run(monkeypatch, capsys, "migrate", "resolve", "--rolled-back",
                        f"payments:{HEAD}")
    assert code == 4 and "is not applied (chain payments is at 20260102000000)" in err


# -- the migrations folder ------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "rule"), [
    (lambda f: (f / "env.py").write_text("raise SystemExit(0)\n"), "whose env.py is not the "
                                                                    "package's"),
    (lambda f: (f / "env.py").write_text(""), "whose env.py is not the package's"),
    (lambda f: (f / "versions" / "bogus").mkdir(), "whose versions/ holds bogus, which is no "
                                                   "chain"),
    (lambda f: shutil.rmtree(f / "versions"), "which has no versions/"),
])
def test_a_migrations_folder_breaking_the_rules_is_refused_with_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        change, rule: str) -> None:
    folder = copy_with(tmp_path, {})
    change(folder)
    with pytest.raises(ConfigError) as refused:
        _ = load_settings({"SHARED_DB_MIGRATIONS_DIR": str(folder)}).migrations_dir
    assert refused.value.field == "SHARED_DB_MIGRATIONS_DIR" and rule in refused.value.rule
    code, out, err = _run(monkeypatch, capsys, "migrate", "lint", folder=folder)
    assert code == 2 and out == "" and err.count("\n") == 1 and rule in err


def test_a_copy_of_the_package_folder_is_taken(tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {})
    env = folder / "env.py"
    env.write_text("# a comment of the team's\n" + env.read_text().replace("run()", "run()  # x"))
    (folder / "versions" / "__pycache__").mkdir()
    assert load_settings({"SHARED_DB_MIGRATIONS_DIR": str(folder)}).migrations_dir == folder


@pytest.mark.parametrize("kind", ["unhashable literal", "folder named .py", "unreadable"])
def test_a_migration_file_that_cannot_be_read_is_one_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        kind: str) -> None:
    folder = copy_with(tmp_path, {})
    odd = folder / "versions/admin/20261202000000_odd.py"
    if kind == "unhashable literal":
        odd.write_text(migration("pass").replace(f"revision = '{NEXT}'", "revision = {[]}"))
    elif kind == "folder named .py":
        odd.mkdir()
    else:
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        odd.write_text(migration("pass"))
        odd.chmod(0)
    code, _, err = _run(monkeypatch, capsys, "migrate", "sql", folder=folder)
    errors = [line for line in err.splitlines() if not line.startswith("Using the embedded")]
    assert code == 4 and len(errors) == 1 and errors[0].startswith("error: "), err
    assert "20261202000000_odd.py" in errors[0]


def test_down_names_its_option_and_undoes_nothing_beside_an_unknown_revision(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        migrated_db: DbFixture) -> None:
    code, _, err = _run(monkeypatch, capsys, "migrate", "down", "--to", "x" * 10_000,
                        db=migrated_db)
    assert code == 4 and err.startswith("error: --to: unknown migration 'xxx"), err
    assert len(err) < 2_000  # the revision shortened, not echoed whole
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version_admin SET version_num = '20270107000000'")
        before = conn.execute("SELECT version_num FROM alembic_version_payments").fetchone()
    code, _, err = _run(monkeypatch, capsys, "migrate", "down")
    assert code == 4 and "admin:20270107000000, which no migration file defines" in err, err
    with psycopg.connect(migrated_db.url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version_payments").fetchone() \
            == before
