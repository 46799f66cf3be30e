"""Backups that are proven to restore, and restores that are all or nothing."""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from shared_db.cli import main
from shared_db.client import Database
from shared_db.errors import BackupError, ConfirmationRequired
from shared_db.ops import backup as backups
from shared_db.ops.checksums import Manifest, file_sha256, manifest_path
from shared_db.ops.restore import restore
from tests.catalog import snapshot
from tests.conftest import DbFixture
from tests.factories import PASSWORD_HASH
from tests.state import digest


@pytest.fixture
async def filled(migrated_db: DbFixture) -> DbFixture:
    async with Database(migrated_db.settings()) as db:
        user = await db.users.create(email="b@example.com", password_hash=PASSWORD_HASH, name="Bé",
                                     role="CUSTOMER")
        await db.profiles.create(user.id, preferences={"emoji": "💸", "nested": {"a": [1, 2]}})
        payment = await db.payments.create(user.id, Decimal("12.34"), type="payment",
                                           metadata={"quote": "it's \"fine\""})
        await db.payment_status.transition(payment.id, "initiated")
        await db.config.set("limits", {"daily": 100})
    return migrated_db


def _state(db: DbFixture) -> tuple[dict, dict]:
    return digest(db.url), snapshot(db.url, version_tables=True)


@pytest.mark.parametrize("fmt", ["custom", "sql.gz"])
def test_backup_verify_restore_round_trip(filled: DbFixture, empty_db: DbFixture,
                                          tmp_path: Path, fmt: str) -> None:
    result = backups.backup(filled.target(), tmp_path, fmt)  # type: ignore[arg-type]
    assert result.file.name.startswith("backup_") and result.file.suffix in (".dump", ".gz")
    manifest = Manifest.read(result.manifest_file)
    assert manifest.tables["users"]["rows"] == 1 and manifest.tables["audit_logs"]["rows"] >= 2
    assert manifest.migrations["auth"] == "20261201000000" and manifest.bytes > 0
    assert backups.verify(result, filled.connection).verified
    restore(empty_db.connection, result.file)
    assert _state(empty_db) == _state(filled)


def test_restore_refuses_a_non_empty_target_unless_forced(filled: DbFixture,
                                                          migrated_db: DbFixture,
                                                          tmp_path: Path) -> None:
    result = backups.backup(filled.target(), tmp_path)
    target = migrated_db  # has tables, no rows: not empty
    with psycopg.connect(target.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE scratch_notes (note text)")
    before = _state(target)
    with pytest.raises(ConfirmationRequired, match="not empty"):
        restore(target.connection, result.file)
    assert _state(target) == before
    restore(target.connection, result.file, force=True)
    assert _state(target) == _state(filled)  # scratch_notes is gone too


def _damaged(result: backups.BackupResult, tmp_path: Path, content: bytes,
             fix_manifest: bool) -> Path:
    copy = tmp_path / "damaged" / result.file.name
    copy.parent.mkdir(exist_ok=True)
    copy.write_bytes(content)
    manifest = json.loads(result.manifest_file.read_text())
    if fix_manifest:  # a forged manifest, so the file itself is what fails
        manifest["bytes"] = len(content)
        manifest["sha256"] = file_sha256(copy)
    manifest_path(copy).write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize("fmt", ["custom", "sql.gz"])
@pytest.mark.parametrize("damage", ["truncated", "random"])
@pytest.mark.parametrize("fix_manifest", [False, True])
def test_broken_files_leave_the_target_exactly_as_it_was(
        filled: DbFixture, tmp_path: Path, fmt: str, damage: str, fix_manifest: bool) -> None:
    result = backups.backup(filled.target(), tmp_path, fmt)  # type: ignore[arg-type]
    data = result.file.read_bytes()
    content = data[: len(data) * 2 // 3] if damage == "truncated" else os.urandom(len(data))
    broken = _damaged(result, tmp_path, content, fix_manifest)
    before = _state(filled)
    with pytest.raises(BackupError) as caught:
        restore(filled.connection, broken, force=True)
    message = str(caught.value)
    if not fix_manifest:
        assert "does not match its manifest" in message
    else:
        assert "rolled back" in message or "cannot read" in message or "gzip" in message
    assert _state(filled) == before


def test_a_manifest_mismatch_rolls_the_restore_back(filled: DbFixture, tmp_path: Path) -> None:
    result = backups.backup(filled.target(), tmp_path)
    doc = json.loads(result.manifest_file.read_text())
    doc["tables"]["payments"]["rows"] += 1
    rows, checksum = doc["tables"]["payments"]["rows"], doc["tables"]["payments"]["checksum"]
    result.manifest_file.write_text(json.dumps(doc))
    before = _state(filled)
    with pytest.raises(BackupError, match=rf"restore check failed for payments: \d+ rows, "
                       rf"checksum \d+; the manifest says {rows} rows, checksum {checksum}"):
        restore(filled.connection, result.file, force=True)
    assert _state(filled) == before


def test_foreign_files_are_refused(filled: DbFixture, tmp_path: Path) -> None:
    stray = tmp_path / "dump.sql"
    stray.write_text("DROP TABLE users;")
    with pytest.raises(BackupError, match="no manifest"):
        restore(filled.connection, stray, force=True)
    with pytest.raises(BackupError, match="does not exist"):
        restore(filled.connection, tmp_path / "missing.dump", force=True)
    manifest_path(stray).write_text("{not json")
    with pytest.raises(BackupError, match="not a shared-db manifest"):
        restore(filled.connection, stray, force=True)


def test_retention_keeps_the_newest(filled: DbFixture, tmp_path: Path) -> None:
    made = []
    for _ in range(3):
        made.append(backups.backup(filled.target(), tmp_path).file)
        time.sleep(1.05)  # names carry the second
    removed = backups.prune(tmp_path, keep=2)
    assert removed == [made[0]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [made[1].name, made[2].name, manifest_path(made[1]).name, manifest_path(made[2]).name])


def test_cli_backup_json_and_restore_codes(filled: DbFixture, empty_db: DbFixture,
                                           tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", filled.url)
    assert main(["backup", "--dir", str(tmp_path), "--verify", "--keep", "5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verified"] is True and Path(doc["file"]).exists()
    assert doc["manifest"]["tables"]["users"]["rows"] == 1
    assert main(["restore", doc["file"]]) == 5  # the source is not empty
    assert "pass --force" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_URL", empty_db.url)
    assert main(["restore", doc["file"]]) == 0
    assert "tables match the manifest" in capsys.readouterr().out
    assert main(["backup", "--format", "zip"]) == 2
    assert main(["restore", str(tmp_path / "nope.dump"), "--force"]) == 6


@pytest.mark.parametrize("fmt", ["custom", "sql.gz"])
def test_a_dump_restore_would_refuse_is_not_kept(filled: DbFixture, tmp_path: Path,
                                                 monkeypatch, capsys, fmt: str) -> None:
    # In a client-only encoding the backslash after a byte of 0x80 or more is part of a
    # character, so restore refuses such a quoted string, and pg_dump writes the comment as one.
    with psycopg.connect(filled.url, autocommit=True) as conn:
        conn.execute("COMMENT ON TABLE users IS E'caf\\u00e9\\\\\\\\ on C:'")
    monkeypatch.setenv("DATABASE_URL", filled.url)
    assert main(["backup", "--dir", str(tmp_path), "--format", fmt]) == 6
    err = capsys.readouterr().err
    assert "would be refused by restore, so no backup was kept" in err
    assert "right before a backslash" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
    with psycopg.connect(filled.url, autocommit=True) as conn:
        conn.execute("COMMENT ON TABLE users IS 'caf\u00e9 on C:'")
    assert main(["backup", "--dir", str(tmp_path), "--format", fmt]) == 0
