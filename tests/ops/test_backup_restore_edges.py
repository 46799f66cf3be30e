"""Restores and backups at their edges, on a real server: run-time setting changes in a tampered
script, dumps that name the lexer's settings, default privileges and operator families of the
schema, psql variable syntax, a refusal while pg_restore still writes, a manifest that cannot be
written, and a --dir that is a file."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import psycopg
import pytest

from shared_db.errors import BackupError
from shared_db.ops import backup as backups
from shared_db.ops import restore as restores
from shared_db.ops.checksums import Manifest
from shared_db.ops.restore import restore
from shared_db.ops.restore_guard import dependents_outside
from tests.conftest import DbFixture
from tests.ops.test_backup import _state, filled  # noqa: F401 (a fixture)
from tests.ops.test_backup_hostile import _restores_in_both_formats, _tampered


def test_a_setting_changed_at_run_time_cannot_commit_half_a_restore(
        filled: DbFixture, tmp_path: Path) -> None:  # noqa: F811
    result = backups.backup(filled.target(), tmp_path, "sql.gz")
    attack = ("SELECT set_config('standard_' || 'conforming_strings', 'off', false);\n"
              "SELECT 'a\\'' AS x; COMMIT; -- ';\nSELECT 1/0;\n")
    bad = _tampered(result, tmp_path, lambda t: t.replace(
        "SET row_security = off;\n", f"SET row_security = off;\n{attack}"))
    before = _state(filled)
    with pytest.raises(BackupError, match="odd number of backslashes") as caught:
        restore(filled.connection, bad, force=True)
    assert "nothing was restored" in str(caught.value) and "line " in str(caught.value)
    assert _state(filled) == before


def test_a_dump_whose_function_names_client_encoding_restores(
        filled: DbFixture, empty_db: DbFixture, tmp_path: Path) -> None:  # noqa: F811
    with psycopg.connect(filled.url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION public.enc() RETURNS text LANGUAGE sql BEGIN ATOMIC "
                     "SELECT current_setting('client_encoding'); END")
        conn.execute("COMMENT ON FUNCTION public.enc() IS 'shows standard_conforming_strings "
                     "and client_encoding'")
    _restores_in_both_formats(filled, empty_db, tmp_path, "SELECT public.enc()", ("UTF8",))


@pytest.fixture
def role(filled: DbFixture):  # type: ignore[no-untyped-def]  # noqa: F811
    name = f"helper_reader_{secrets.token_hex(4)}"
    with psycopg.connect(filled.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name}")
    yield name
    with psycopg.connect(filled.url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE {name}")


def test_the_schemas_own_default_privileges_and_operator_families_do_not_block_a_restore(
        filled: DbFixture, tmp_path: Path, role: str) -> None:  # noqa: F811
    result = backups.backup(filled.target(), tmp_path)
    with psycopg.connect(filled.url, autocommit=True) as conn:
        conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}")
        conn.execute("CREATE FUNCTION public.same(int, int) RETURNS bool LANGUAGE sql "
                     "IMMUTABLE AS 'SELECT $1 = $2'")
        conn.execute("CREATE OPERATOR public.=== (FUNCTION = public.same, LEFTARG = int, "
                     "RIGHTARG = int)")
        conn.execute("CREATE OPERATOR CLASS public.same_ops FOR TYPE int USING hash AS "
                     "OPERATOR 1 public.===, FUNCTION 1 hashint4(int)")
    assert dependents_outside(filled.connection, "public") == []
    restore(filled.connection, result.file, force=True)
    with psycopg.connect(filled.url, autocommit=True) as conn:
        # what lives in no schema and goes with ours is still listed
        conn.execute("CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql "
                     "AS 'BEGIN END'")
        conn.execute("CREATE EVENT TRIGGER helper_on_ddl ON ddl_command_end "
                     "EXECUTE FUNCTION public.on_ddl()")
        try:
            assert dependents_outside(filled.connection, "public") == [
                "event trigger helper_on_ddl"]
        finally:
            conn.execute("DROP EVENT TRIGGER helper_on_ddl")


def test_psql_variable_syntax_in_a_script_means_what_was_scanned(
        filled: DbFixture, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    result = backups.backup(filled.target(), tmp_path, "sql.gz")
    view = ("CREATE VIEW public.slices AS SELECT (ARRAY[1, 2, 3])[1:tables] AS a, "
            "(ARRAY[4, 5])[rows:rows] AS b FROM (SELECT 2 AS tables, 1 AS rows) s;\n")
    changed = _tampered(result, tmp_path, lambda t: t.replace("\\unrestrict ",
                                                              f"{view}\\unrestrict "))
    started: list[list[str]] = []
    real = subprocess.Popen

    def spy(argv, *args, **kwargs):  # type: ignore[no-untyped-def]
        started.append(list(argv))
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(restores.subprocess, "Popen", spy)
    restore(filled.connection, changed, force=True)
    psql = next(argv for argv in started if argv[0].endswith("psql"))
    assert "-v" not in psql and not any(a.startswith(("schema=", "tables=")) for a in psql)
    with psycopg.connect(filled.url) as conn:
        assert conn.execute("SELECT a, b FROM public.slices").fetchone() == ([1, 2], [4])


def test_a_refused_custom_restore_leaves_no_pg_restore_running(
        filled: DbFixture, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    with psycopg.connect(filled.url, autocommit=True) as conn:
        # a comment pg_dump writes as 'a\'' (refused), then far more data than a pipe holds
        conn.execute("CREATE TABLE public.bulk AS SELECT repeat('x', 1000) AS v "
                     "FROM generate_series(1, 20000)")
        conn.execute("COMMENT ON TABLE public.bulk IS 'a\\'")
    with monkeypatch.context() as kept:  # backup itself refuses to keep such a dump
        kept.setattr(backups, "check_script", lambda *_: None)
        result = backups.backup(filled.target(), tmp_path)
    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        started.append(real(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(restores.subprocess, "Popen", spy)
    with pytest.raises(BackupError, match="odd number of backslashes"):
        restore(filled.connection, result.file, force=True)
    readers = [p for p in started if str(p.args[0]).endswith("pg_restore")]  # type: ignore[index]
    assert readers and all(p.poll() is not None for p in readers)


def test_a_manifest_that_cannot_be_written_leaves_no_dump(filled: DbFixture,  # noqa: F811
                                                          tmp_path: Path, monkeypatch) -> None:
    def full(self: Manifest, path: Path) -> None:
        path.with_suffix(".partial").write_text("{")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Manifest, "write", full)
    with pytest.raises(BackupError, match=r"cannot write the manifest .*No space left"):
        backups.backup(filled.target(), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["file", "through-file"])
def test_backup_into_a_file_is_refused_by_the_one_folder_check(
        migrated_db: DbFixture, tmp_path: Path, case: str) -> None:
    (tmp_path / "plain").write_text("x")
    folder = tmp_path / "plain" if case == "file" else tmp_path / "plain" / "sub"
    with pytest.raises(BackupError, match="not a directory"):
        backups.backup(migrated_db.target(), folder)
    assert (tmp_path / "plain").read_text() == "x"
