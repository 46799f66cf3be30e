"""Backups and restores against hostile folders, files and databases: retention that deletes
only its own backups, two backups in one second, tampered scripts (psql meta-commands,
transaction control), objects of other schemas, bad ``--dir``, and the manifest's other checks."""

from __future__ import annotations

import gzip
import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from shared_db.cli import main
from shared_db.errors import BackupError
from shared_db.ops import backup as backups
from shared_db.ops import backup_files
from shared_db.ops import restore as restores
from shared_db.ops.checksums import file_sha256, manifest_path
from shared_db.ops.restore import check_file, restore
from shared_db.ops.restore_script import scan
from shared_db.url import parse_database_url
from tests.conftest import DbFixture
from tests.ops.test_backup import _state, filled  # noqa: F401 (a fixture)

# -- 1. retention ---------------------------------------------------------------------------


def test_keep_deletes_only_its_own_backups_and_never_the_new_one(
        filled: DbFixture, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: F811
    old = backups.backup(filled.target(), tmp_path).file
    time.sleep(1.05)
    strangers = ["backup_old.dump", "backup_latest.dump", "backup_zzz.sql.gz",
                 "backup_20000101_000000.dump", "backup_20991231_235959.dump.txt", "notes.txt"]
    for name in strangers:
        (tmp_path / name).write_text("not ours")
    # a manifest that names another file does not make this one ours
    (tmp_path / "backup_20000101_000001.dump").write_text("x")
    manifest_path(tmp_path / "backup_20000101_000001.dump").write_text(
        manifest_path(old).read_text())
    monkeypatch.setenv("DATABASE_URL", filled.url)
    assert main(["backup", "--dir", str(tmp_path), "--keep", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    new = Path(doc["file"])
    assert new.exists() and check_file(new)
    assert doc["removed"] == [str(old)] and not old.exists() and not manifest_path(old).exists()
    for name in [*strangers, "backup_20000101_000001.dump", "backup_20000101_000001.manifest.json"]:
        assert (tmp_path / name).exists(), name


def test_keep_orders_by_the_time_in_the_name(filled: DbFixture, tmp_path: Path) -> None:  # noqa: F811
    made = backups.backup(filled.target(), tmp_path)
    # an older backup copied in later, under its own (older) name, is the one to go
    older = tmp_path / "backup_20000101_000000.dump"
    older.write_bytes(made.file.read_bytes())
    doc = json.loads(made.manifest_file.read_text())
    manifest_path(older).write_text(json.dumps({**doc, "file": older.name}))
    assert backups.prune(tmp_path, 1, made.file) == [older]
    assert made.file.exists() and not older.exists() and not manifest_path(older).exists()


# -- 2. two backups started in the same second -----------------------------------------------


def test_two_formats_in_one_second_get_two_names(filled: DbFixture, tmp_path: Path,  # noqa: F811
                                                 monkeypatch) -> None:
    start = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    calls = iter([start] * 3 + [start + timedelta(seconds=1)] * 100)

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return next(calls)

    monkeypatch.setattr(backup_files, "datetime", Clock)
    monkeypatch.setattr(backup_files.time, "sleep", lambda _: None)
    first = backups.backup(filled.target(), tmp_path, "custom")
    second = backups.backup(filled.target(), tmp_path, "sql.gz")
    assert first.file.name == "backup_20260501_120000.dump"
    assert second.file.name == "backup_20260501_120001.sql.gz"
    assert first.manifest_file != second.manifest_file
    assert check_file(first.file).format == "custom"
    assert check_file(second.file).format == "sql.gz"


# -- 3 and 4. tampered scripts ---------------------------------------------------------------


def _restores_in_both_formats(source: DbFixture, empty_db: DbFixture, tmp_path: Path,
                              probe: str, expected: tuple[object, ...]) -> None:
    """A backup of ``source`` in each format restores into ``empty_db`` as it was, and
    ``probe`` there answers ``expected``."""
    for fmt in ("sql.gz", "custom"):
        made = backups.backup(source.target(), tmp_path / fmt, fmt)  # type: ignore[arg-type]
        restore(empty_db.connection, made.file, force=True)
        assert _state(empty_db) == _state(source)
        with psycopg.connect(empty_db.url) as conn:
            assert conn.execute(probe).fetchone() == expected


def _tampered(result: backups.BackupResult, tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """A copy of an sql.gz backup with its script changed and its manifest recomputed, as an
    attacker who can write the folder would."""
    text = gzip.decompress(result.file.read_bytes()).decode()
    copy = tmp_path / "tampered" / result.file.name
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes(gzip.compress(change(text).encode()))
    doc = json.loads(result.manifest_file.read_text())
    manifest_path(copy).write_text(json.dumps({**doc, "bytes": copy.stat().st_size,
                                               "sha256": file_sha256(copy)}))
    return copy


def _around(text: str, before: str = "", after: str = "") -> str:
    lines = text.splitlines(keepends=True)
    first = next(i for i, ln in enumerate(lines) if ln.startswith("\\restrict "))
    last = next(i for i, ln in enumerate(lines) if ln.startswith("\\unrestrict "))
    return "".join([*lines[:first], before, *lines[first:last + 1], after, *lines[last + 1:]])


@pytest.mark.parametrize("where", ["before", "after", "mid-line"])
def test_psql_meta_commands_in_a_script_are_refused(filled: DbFixture, tmp_path: Path,  # noqa: F811
                                                    where: str, monkeypatch, capsys) -> None:
    result = backups.backup(filled.target(), tmp_path, "sql.gz")
    marker = tmp_path / "pwned"
    shell = f"\\! touch {marker}\n"
    change = {"before": lambda t: _around(t, before=shell),
              "after": lambda t: _around(t, after=shell),
              "mid-line": lambda t: t.replace("SET row_security = off;\n",
                                              f"SET row_security = off; {shell}")}[where]
    bad = _tampered(result, tmp_path, change)
    before = _state(filled)
    monkeypatch.setenv("DATABASE_URL", filled.url)
    assert main(["restore", str(bad), "--force"]) == 6
    err = capsys.readouterr().err
    assert "meta-command" in err and "nothing was restored" in err
    assert not marker.exists()
    assert _state(filled) == before


@pytest.mark.parametrize("statement", ["COMMIT;", "commit work;", "END;", "ROLLBACK;",
                                       "BEGIN;", "START TRANSACTION;", "SAVEPOINT s;",
                                       "RELEASE SAVEPOINT s;", "PREPARE TRANSACTION 'x';",
                                       "COMMIT PREPARED 'x';", "ABORT;",
                                       "/* c */ COMMIT AND CHAIN;"])
def test_transaction_control_in_a_script_is_refused(filled: DbFixture, tmp_path: Path,  # noqa: F811
                                                    statement: str) -> None:
    result = backups.backup(filled.target(), tmp_path, "sql.gz")
    # the guide's attack: end our transaction early, then fail, so the rollback undoes nothing
    bad = _tampered(result, tmp_path, lambda t: t.replace(
        "SET row_security = off;\n", f"SET row_security = off;\n{statement}\n").replace(
        "\\unrestrict ", "SELECT 1/0;\n\\unrestrict "))
    before = _state(filled)
    with pytest.raises(BackupError, match="transaction control") as caught:
        restore(filled.connection, bad, force=True)
    assert "nothing was restored" in str(caught.value)
    assert _state(filled) == before


def test_function_bodies_with_commit_and_sql_standard_bodies_still_restore(
        filled: DbFixture, empty_db: DbFixture, tmp_path: Path) -> None:  # noqa: F811
    with psycopg.connect(filled.url, autocommit=True) as conn:
        conn.execute("CREATE PROCEDURE public.tidy() LANGUAGE plpgsql AS $$ BEGIN COMMIT; "
                     "END $$")
        conn.execute("CREATE FUNCTION public.two() RETURNS int LANGUAGE sql BEGIN ATOMIC "
                     "SELECT 1; SELECT 2; END")
        conn.execute("CREATE FUNCTION public.quoted() RETURNS text LANGUAGE sql AS "
                     "$body$ SELECT E'\\\\ COMMIT; \\\\! x' $body$")
    _restores_in_both_formats(filled, empty_db, tmp_path, "SELECT public.two()", (2,))


@pytest.mark.parametrize(("script", "reason"), [
    (b"SELECT 1;\n/* never closed\n", "ends inside"),
    (b"COPY public.t (a) FROM stdin;\n1\n", "does not end with a \\. line"),
    (b"COPY public.t (a) FROM PROGRAM 'id';\n", "COPY other than"),
    (b"SELECT $$ x;\n", "ends inside"),
    (b"SELECT 1; \\o /tmp/out\n", "meta-command"),
    (b"SELECT 'a\0'; \n", "NUL"),
    (b"\\restrict abc\n\\restrict abc\n", "out of place"),
    (b"SET standard_conforming_strings = off;\n", "standard_conforming_strings"),
    (b"SET client_encoding = 'SJIS';\n", "client_encoding"),
    (b"SELECT 1e'\\' ; \\! id ; ';\n", "either way"),
])
def test_scripts_psql_would_read_otherwise_are_refused(script: bytes, reason: str) -> None:
    with pytest.raises(BackupError, match="refused") as caught:
        list(scan("f.sql.gz", [script]))
    assert reason in str(caught.value)


def test_copy_data_is_never_parsed_and_passes_unchanged() -> None:
    script = (b"\\restrict k1\nSET x = 1;\nCOPY public.t (a) FROM stdin;\n\\N\n"
              b"BEGIN; \\! not a command $$ '\n\\.\nSELECT 1;\n\\unrestrict k1\n")
    assert b"".join(scan("f", [script[i:i + 5] for i in range(0, len(script), 5)])) == (
        b"SET x = 1;\nCOPY public.t (a) FROM stdin;\n\\N\nBEGIN; \\! not a command $$ '\n"
        b"\\.\nSELECT 1;\n")


# -- 5. objects of other schemas -------------------------------------------------------------


def test_a_forced_restore_never_drops_other_schemas_objects(
        filled: DbFixture, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: F811
    result = backups.backup(filled.target(), tmp_path)
    with psycopg.connect(filled.url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA keep")
        conn.execute("CREATE VIEW keep.v AS SELECT id, email FROM public.users")
        conn.execute("CREATE TABLE keep.t (user_id uuid REFERENCES public.users (id))")
    before = _state(filled)
    monkeypatch.setenv("DATABASE_URL", filled.url)
    assert main(["restore", str(result.file), "--force"]) == 6
    err = capsys.readouterr().err
    assert "keep.v" in err and "keep.t" in err and "nothing was restored" in err
    assert _state(filled) == before
    with psycopg.connect(filled.url) as conn:
        assert conn.execute("SELECT to_regclass('keep.v'), to_regclass('keep.t')").fetchone() \
            == ("keep.v", "keep.t")
        conn.execute("DROP SCHEMA keep CASCADE")
        conn.commit()
    restore(filled.connection, result.file, force=True)


# -- 6. --dir that is not a directory --------------------------------------------------------


@pytest.mark.parametrize("case", ["file", "through-file", "dev-null"])
def test_backup_dir_that_is_not_a_directory_is_exit_2(migrated_db: DbFixture, tmp_path: Path,
                                                      case: str, monkeypatch, capsys) -> None:
    (tmp_path / "plain").write_text("x")
    folder = {"file": tmp_path / "plain", "through-file": tmp_path / "plain" / "sub" / "dir",
              "dev-null": Path("/dev/null")}[case]
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    assert main(["backup", "--dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert "--dir" in err and ("not a directory" in err or "is a file" in err), err


@pytest.mark.parametrize("given", ["", "  "])
def test_an_empty_backup_dir_is_refused_not_read_as_the_current_one(
        migrated_db: DbFixture, tmp_path: Path, given: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    monkeypatch.chdir(tmp_path)
    assert main(["backup", "--dir", given]) == 2
    assert "--dir: must name a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# -- 7. the manifest's other fields, and locks -----------------------------------------------


def _rewritten(result: backups.BackupResult, **fields: object) -> None:
    doc = json.loads(result.manifest_file.read_text())
    result.manifest_file.write_text(json.dumps({**doc, **fields}))


@pytest.mark.parametrize(("migrations", "message"), [
    ({"auth": "zzz"}, "'zzz', not a revision of chain auth"),
    ({}, "must name the chains"),
    ({"nochain": None}, "chain 'nochain', which shared-db does not have"),
])
def test_manifest_migrations_are_checked(filled: DbFixture, tmp_path: Path,  # noqa: F811
                                         migrations: dict, message: str) -> None:
    result = backups.backup(filled.target(), tmp_path)
    _rewritten(result, migrations=migrations)
    before = _state(filled)
    with pytest.raises(BackupError, match="migrations") as caught:
        restore(filled.connection, result.file, force=True)
    assert message in str(caught.value)
    assert _state(filled) == before


def test_a_backup_of_another_schema_is_refused_before_anything_is_sent(
        filled: DbFixture, tmp_path: Path) -> None:  # noqa: F811
    result = backups.backup(filled.target(), tmp_path)
    other = parse_database_url(f"{filled.url}?schema=tenant_b")
    with pytest.raises(BackupError, match="backup of schema public, and the target URL's "
                                          "schema is tenant_b"):
        restore(other, result.file, force=True)


def test_a_checksum_mismatch_shows_both_checksums(filled: DbFixture, tmp_path: Path) -> None:  # noqa: F811
    result = backups.backup(filled.target(), tmp_path)
    _rewritten(result, sha256="0" * 64)
    with pytest.raises(BackupError) as caught:
        restore(filled.connection, result.file, force=True)
    assert "0" * 64 in str(caught.value) and file_sha256(result.file) in str(caught.value)


def test_a_restore_blocked_by_a_lock_fails_instead_of_waiting(
        filled: DbFixture, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    result = backups.backup(filled.target(), tmp_path)
    assert "lock_timeout = '30s'" in restores.GUARD
    monkeypatch.setattr(restores, "GUARD", restores.GUARD.replace("'30s'", "'1s'"))
    before = _state(filled)
    with psycopg.connect(filled.url) as holder:
        holder.execute("LOCK TABLE public.users IN ACCESS SHARE MODE")
        started = time.monotonic()
        with pytest.raises(BackupError, match="lock timeout"):
            restore(filled.connection, result.file, force=True)
        assert time.monotonic() - started < 20
        holder.rollback()
    assert _state(filled) == before


def test_a_full_disk_names_the_file_and_keeps_nothing(filled: DbFixture,  # noqa: F811
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with psycopg.connect(filled.url, autocommit=True) as conn:  # more than 16 kB gzipped
            conn.execute("CREATE TABLE bulk AS SELECT md5(n::text) AS h FROM "
                         "generate_series(1, 20000) AS n")
        with pytest.raises(BackupError, match=r"cannot write .*backup_\d+_\d+\.sql\.gz\.partial: "
                           r"No space left on device; nothing was kept"):
            backups.backup(filled.target(), folder, "sql.gz")
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_recover_refuses_an_endless_age_naming_the_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "recover", "--older-than", "inf"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --older-than: must be a finite number of seconds, got inf")
