"""``shared-db restore``: all of a verified backup, or nothing.

The backup becomes one SQL script (``pg_restore -f -`` for custom files, gunzip for sql.gz) that
psql runs with ``--single-transaction`` and ``ON_ERROR_STOP``, between our own prologue (empty the
schema) and epilogue (check every table's rows and checksum against the manifest and raise on any
difference). Both are constant SQL; the schema and the manifest's values reach them as psql
variables. A broken, truncated or foreign file, a failing statement or a mismatch rolls the whole
transaction back: the target is exactly as it was.
"""

from __future__ import annotations

import contextlib
import gzip
import subprocess
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from psycopg import sql

from shared_db.connect import connect_direct
from shared_db.devserver import bin_dir, tool_env
from shared_db.errors import BackupError, ConfirmationRequired
from shared_db.ops.checksums import (
    EPILOGUE,
    EXTENSIONS,
    PROLOGUE,
    Manifest,
    file_sha256,
    manifest_path,
    psql_variables,
)
from shared_db.url import ConnectionSettings

Progress = Callable[[str], None]
# pg_dump 17+ writes this into every script; older servers do not know the setting.
NEW_SETTINGS = (b"SET transaction_timeout = 0;",)


def check_file(file: Path) -> Manifest:
    """The manifest of ``file`` after proving the file is the one it describes.

    Raises:
        BackupError: ``file`` is missing or not a file, its manifest is missing or malformed
            (naming the field and its rule), or the two do not match.
    """
    if file.is_dir():
        raise BackupError(f"{file} is a directory, not a backup file: give the "
                          "backup_….dump or backup_….sql.gz file itself")
    if not file.exists():
        raise BackupError(f"{file} does not exist")
    if not file.is_file():
        raise BackupError(f"{file} is not a regular file, not a backup")
    where = manifest_path(file)
    manifest = Manifest.read(where)
    if manifest.file != file.name:
        raise BackupError(f"{where} describes {manifest.file}, not {file.name}")
    if not file.name.endswith(EXTENSIONS[manifest.format]):
        raise BackupError(f"{where} says format {manifest.format!r}, whose files end in "
                          f"{EXTENSIONS[manifest.format]}, but the file is {file.name}")
    size = file.stat().st_size
    if size != manifest.bytes or file_sha256(file) != manifest.sha256:
        raise BackupError(f"{file} does not match its manifest ({size} bytes, the manifest "
                          f"says {manifest.bytes}): it is truncated or was changed")
    return manifest


def _target_state(conn: ConnectionSettings, schema: str) -> tuple[list[str], int]:
    """The target schema's tables and the server's version number, on one connection."""
    with connect_direct(conn) as db:
        rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        tables = [r[0] for r in rows]
        version = int((db.execute("SHOW server_version_num").fetchone() or [0])[0])
    return tables, version


def _script(file: Path, fmt: str) -> Iterator[bytes]:
    if fmt == "sql.gz":
        try:
            with gzip.open(file, "rb") as handle:
                yield from iter(lambda: handle.read(1 << 20), b"")
        except (OSError, EOFError, zlib.error) as exc:
            raise BackupError(f"{file.name} is not a readable gzip file ({exc})") from None
        return
    argv = [str(bin_dir() / "pg_restore"), "--no-owner", "--no-privileges", "--file", "-",
            str(file)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        yield from iter(lambda: proc.stdout.read(1 << 20), b"")  # type: ignore[union-attr]
        error = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise BackupError(f"pg_restore cannot read {file.name}: {error}")


def _feed(stdin: IO[bytes], chunks: Iterator[bytes], dropped: tuple[bytes, ...]) -> None:
    head = True
    for chunk in chunks:
        if head:
            for line in dropped:
                chunk = chunk.replace(line + b"\n", b"")
            head = False
        stdin.write(chunk)


def _created_by_prologue(schema: str) -> tuple[bytes, ...]:
    """The dump's own ``CREATE SCHEMA`` of a schema other than public (pg_dump quotes the name
    only where it must): the prologue has just created it, and a second one would fail."""
    statement = sql.SQL("CREATE SCHEMA {};")
    return (statement.format(sql.SQL(schema)).as_bytes(None),
            statement.format(sql.Identifier(schema)).as_bytes(None))


def restore(conn: ConnectionSettings, file: Path, *, force: bool = False,
            progress: Progress = lambda _: None) -> Manifest:
    """Replace the contents of ``conn``'s schema with the backup ``file``, all or nothing.

    Raises:
        BackupError: the file is missing, broken, foreign or does not restore as its manifest
            says; the target is unchanged.
        ConfirmationRequired: the target has tables and ``force`` is False.
    """
    manifest = check_file(file)
    schema = conn.schema or manifest.schema
    present, server_version = _target_state(conn, schema)
    if present and not force:
        raise ConfirmationRequired(
            f"{conn.safe_url()} is not empty ({len(present)} tables); pass --force to replace it")
    url, env = tool_env(conn)
    argv = [str(bin_dir() / "psql"), "--no-psqlrc", "--quiet", "--single-transaction",
            "--set", "ON_ERROR_STOP=1", *psql_variables(manifest, schema), "--dbname", url,
            "--file", "-"]
    prologue, epilogue = PROLOGUE.encode(), EPILOGUE.encode()
    progress(f"restoring {file.name} into {conn.safe_url()}")
    dropped = (NEW_SETTINGS if server_version < 170000 else ()) + _created_by_prologue(schema)
    try:
        psql = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    except OSError as exc:  # psql missing, or the manifest's lists too long for its arguments
        raise BackupError(f"cannot run psql ({exc.strerror}); nothing was restored") from None
    with psql:
        assert psql.stdin is not None and psql.stderr is not None
        failure: BackupError | None = None
        try:
            psql.stdin.write(prologue)
            _feed(psql.stdin, _script(file, manifest.format), dropped)
            psql.stdin.write(epilogue)
        except BackupError as exc:
            failure = exc
            psql.kill()  # never let psql commit a half-fed script
        except BrokenPipeError:
            pass  # psql stopped on an error; its message says which
        finally:
            with contextlib.suppress(BrokenPipeError):
                psql.stdin.close()
        error = psql.stderr.read().decode(errors="replace").strip()
    if failure is not None:
        raise failure
    if psql.returncode != 0:
        lines = [ln for ln in error.splitlines() if "ERROR" in ln or "error" in ln] or [error]
        raise BackupError(f"restore failed and was rolled back: {lines[0]}")
    progress("restored and checked against the manifest")
    return manifest
