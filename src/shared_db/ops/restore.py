"""``shared-db restore``: all of a verified backup, or nothing.

The backup becomes one SQL script (``pg_restore -f -`` for custom files, gunzip for sql.gz) that
psql runs with ``ON_ERROR_STOP`` inside our own ``BEGIN`` and ``COMMIT``, between our own prologue
(empty the schema) and epilogue (check every table's rows and checksum against the manifest and
raise on any difference). The ``COMMIT`` is the last line sent, not psql's
``--single-transaction``: that commits at the end of its input however the input ended, so a
restore killed while feeding psql (SIGTERM, a closed pipe) committed the half sent so far. Now
an input that ends early ends the session inside the transaction, which the server rolls back.
The schema and the manifest's values are written into them as quoted SQL literals: psql gets no
variable of ours, which it would also replace inside the script. A broken, truncated or foreign
file, a failing statement or a mismatch rolls the whole transaction back: the target is exactly as
it was.

Before anything is sent the file is checked against its manifest (size, SHA-256, a schema that
is the target's, migration heads the package knows: ``restore_guard``), the objects of other
schemas that emptying the target would drop are listed (and refuse the restore), and the whole
script is read once as psql will read it (``restore_script``): a meta-command or a statement that
ends the transaction refuses it. The same reading filters the script again as it is fed, from
the same open file, under psql's ``\\restrict`` with a key of ours, so psql refuses any
meta-command itself. Emptying the schema waits for locks at most ``restore_guard.LOCK_TIMEOUT``
(30 seconds), then fails and rolls back.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import secrets
import subprocess
import zlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import BinaryIO

from psycopg import sql

from shared_db.config import PACKAGE_MIGRATIONS
from shared_db.connect import connect_direct
from shared_db.devserver import bin_dir, tool_env
from shared_db.errors import BackupError, ConfigError, ConfirmationRequired
from shared_db.ops.checksums import EXTENSIONS, Manifest, epilogue, manifest_path, prologue
from shared_db.ops.restore_guard import (
    GUARD,
    LOCK_TIMEOUT,
    check_migrations,
    guard_call,
    refuse_outside,
)
from shared_db.ops.restore_script import RESTORE_REFUSED, scan
from shared_db.url import ConnectionSettings

Progress = Callable[[str], None]
# pg_dump 17+ writes this into every script; older servers do not know the setting.
NEW_SETTINGS = (b"SET transaction_timeout = 0;",)
SHOWN_OBJECTS = 5


def check_file(file: Path) -> Manifest:
    """The manifest of ``file`` after proving the file is the one it describes.

    Raises:
        BackupError: ``file`` is missing or not a file, its manifest is missing or malformed
            (naming the field and its rule), or the two do not match.
    """
    _refuse_non_file(file)
    with file.open("rb") as handle:
        return _checked(file, handle)


def _refuse_non_file(file: Path) -> None:
    if file.is_dir():
        raise BackupError(f"{file} is a directory, not a backup file: give the "
                          "backup_….dump or backup_….sql.gz file itself")
    if not file.exists():
        raise BackupError(f"{file} does not exist")
    if not file.is_file():
        raise BackupError(f"{file} is not a regular file, not a backup")


def _checked(file: Path, handle: BinaryIO) -> Manifest:
    """The manifest of ``file``, proven against the bytes of ``handle`` (the open file)."""
    where = manifest_path(file)
    manifest = Manifest.read(where)
    if manifest.file != file.name:
        raise BackupError(f"{where} describes {manifest.file}, not {file.name}")
    if not file.name.endswith(EXTENSIONS[manifest.format]):
        raise BackupError(f"{where} says format {manifest.format!r}, whose files end in "
                          f"{EXTENSIONS[manifest.format]}, but the file is {file.name}")
    digest, size = hashlib.sha256(), 0
    handle.seek(0)
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    if size != manifest.bytes or digest.hexdigest() != manifest.sha256:
        raise BackupError(f"{file} does not match its manifest: the file has {size} bytes and "
                          f"SHA-256 {digest.hexdigest()}, the manifest says {manifest.bytes} "
                          f"bytes and SHA-256 {manifest.sha256}: it is truncated or was changed")
    return manifest


# Every object that lives in a schema depends on it in pg_depend (what DROP SCHEMA ... CASCADE
# follows): tables, views, sequences, functions, types, an extension made in it.
CONTENTS = """SELECT pg_catalog.pg_describe_object(d.classid, d.objid, 0),
  d.classid = 'pg_catalog.pg_class'::regclass AND c.relkind IN ('r', 'p')
FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_namespace n ON n.oid = d.refobjid
LEFT JOIN pg_catalog.pg_class c ON d.classid = 'pg_catalog.pg_class'::regclass AND c.oid = d.objid
WHERE d.refclassid = 'pg_catalog.pg_namespace'::regclass AND n.nspname = %s AND d.deptype = 'n'
ORDER BY 2 DESC, 1"""


def _target_state(conn: ConnectionSettings, schema: str) -> tuple[list[tuple[str, bool]], int]:
    """What the target schema holds (each object's description, and whether it is a table) and
    the server's version number, on one connection."""
    with connect_direct(conn) as db:
        held = [(str(r[0]), bool(r[1])) for r in db.execute(CONTENTS, (schema,))]
        version = int((db.execute("SHOW server_version_num").fetchone() or [0])[0])
    return held, version


def _not_empty(held: list[tuple[str, bool]]) -> str:
    tables = sum(1 for _, table in held if table)
    others = [name for name, table in held if not table]
    found = [f"{tables} tables"] if tables else []
    if others:
        shown = ", ".join(others[:SHOWN_OBJECTS]) + (", ..." if len(others) > SHOWN_OBJECTS else "")
        found.append(f"{len(others)} other objects: {shown}")
    return "; ".join(found)


def _script(file: Path, handle: BinaryIO, fmt: str) -> Generator[bytes, None, None]:
    """The SQL of the backup, read from ``handle`` (the file already proven) from its start."""
    handle.seek(0)
    if fmt == "sql.gz":
        try:
            with gzip.open(handle, "rb") as unzipped:
                yield from iter(lambda: unzipped.read(1 << 20), b"")
        except (OSError, EOFError, zlib.error) as exc:
            raise BackupError(f"{file.name} is not a readable gzip file ({exc})") from None
        return
    argv = [str(bin_dir() / "pg_restore"), "--no-owner", "--no-privileges", "--file", "-"]
    with subprocess.Popen(argv, stdin=handle, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            yield from iter(lambda: proc.stdout.read(1 << 20), b"")  # type: ignore[union-attr]
        except GeneratorExit:
            proc.kill()  # the reader stopped (a refusal): pg_restore would block on a full pipe
            raise
        error = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise BackupError(f"pg_restore cannot read {file.name}: {error}")


@contextlib.contextmanager
def _scanned(file: Path, handle: BinaryIO, fmt: str, dropped: tuple[bytes, ...], *,
             name: str | None = None, verdict: str = RESTORE_REFUSED,
             ) -> Iterator[Iterator[bytes]]:
    """The checked script; leaving the block closes the scan and the script at once (a refusal
    would otherwise leave pg_restore blocked on a full pipe until garbage collection). A
    refusal's message says ``name`` (default: the file's) and ``verdict``."""
    with contextlib.closing(_script(file, handle, fmt)) as source, \
            contextlib.closing(scan(name or file.name, source, dropped, verdict)) as chunks:
        yield chunks


def check_script(file: Path, fmt: str, name: str) -> None:
    """Read a new dump as ``restore`` will, so that a dump it would refuse is never kept as a
    backup (pg_dump writes what the reading refuses, a quoted string with a byte of 0x80 or more
    before a backslash, when a comment or default holds one).

    Raises:
        BackupError: ``restore`` would refuse the dump ``file`` (to be named ``name``).
    """
    with file.open("rb") as handle, _scanned(
            file, handle, fmt, (), name=name,
            verdict="would be refused by restore, so no backup was kept (change the object "
                    "that line of the dump creates and back up again)") as chunks:
        for _ in chunks:
            pass


def _created_by_prologue(schema: str) -> tuple[bytes, ...]:
    """The dump's own ``CREATE SCHEMA`` of a schema other than public (pg_dump quotes the name
    only where it must): the prologue has just created it, and a second one would fail."""
    statement = sql.SQL("CREATE SCHEMA {};")
    return (statement.format(sql.SQL(schema)).as_bytes(None),
            statement.format(sql.Identifier(schema)).as_bytes(None))


def restore(conn: ConnectionSettings, file: Path, *, force: bool = False,
            progress: Progress = lambda _: None, migrations_dir: Path | None = None,
            chains: tuple[str, ...] | None = None) -> Manifest:
    """Replace the contents of ``conn``'s schema with the backup ``file``, all or nothing.

    ``migrations_dir`` (default: the package's migrations) is where the manifest's migration
    heads must be revisions. ``chains``: the migration chains the target carries (all of them
    in the shared topology, its own in a service's database); the backup must carry the same,
    or a service's backup would empty the shared database of the other services' tables.

    Raises:
        ConfigError: a URL through PgBouncer (``pgbouncer=true``).
        BackupError: the file is missing, broken, foreign, of a database carrying other
            chains than ``chains``, holds what must not run (a psql
            meta-command, transaction control), or does not restore as its manifest says;
            objects of other schemas depend on the target schema; the target is unchanged.
        ConfirmationRequired: the target has tables and ``force`` is False.
    """
    if conn.pgbouncer:
        # The dump's session settings (search_path '', row_security off) would stay on the
        # server connection PgBouncer hands the next client, and in transaction mode the
        # statements before BEGIN may not even reach the server the restore runs on.
        raise ConfigError("DATABASE_URL", "restore needs a direct connection to the server, "
                          "not one through PgBouncer (pgbouncer=true): give the server's own "
                          "URL; nothing was restored")
    _refuse_non_file(file)
    with file.open("rb") as handle:
        return _restore(conn, file, handle, force, progress, migrations_dir, chains)


def _restore(conn: ConnectionSettings, file: Path, handle: BinaryIO, force: bool,
             progress: Progress, migrations_dir: Path | None,
             chains: tuple[str, ...] | None) -> Manifest:
    manifest = _checked(file, handle)
    check_migrations(manifest, manifest_path(file), migrations_dir or PACKAGE_MIGRATIONS)
    if chains is not None and set(manifest.migrations) != set(chains):
        raise BackupError(f"{file.name} is a backup of a database carrying the "
                          f"{', '.join(manifest.migrations)} chain(s), and the target carries "
                          f"{', '.join(chains)}: a shared backup restores into the shared "
                          "topology's database, a service's into that service's database "
                          "(--service); nothing was restored")
    schema = conn.schema or "public"  # a URL without schema= works in public, as the pools do
    if schema != manifest.schema:
        raise BackupError(f"{file.name} is a backup of schema {manifest.schema}, and the target "
                          f"URL's schema is {schema}: restore it into a URL with "
                          f"schema={manifest.schema}; nothing was restored")
    present, server_version = _target_state(conn, schema)
    if present and not force:
        raise ConfirmationRequired(f"{conn.safe_url()} is not empty ({_not_empty(present)}); "
                                   "pass --force to replace it")
    refuse_outside(conn, schema)
    dropped = (NEW_SETTINGS if server_version < 170000 else ()) + _created_by_prologue(schema)
    progress(f"checking {file.name}")
    with _scanned(file, handle, manifest.format, dropped) as chunks:
        for _ in chunks:
            pass
    url, env = tool_env(conn)
    argv = [str(bin_dir() / "psql"), "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1",
            "--dbname", url, "--file", "-"]
    # No script can know this key, so psql refuses every meta-command after this line.
    head = (f"\\restrict {secrets.token_hex(32)}\nBEGIN;\n{GUARD}{guard_call(schema)}"
            f"{prologue(schema)}").encode()
    tail = (epilogue(manifest, schema) + "\nCOMMIT;\n").encode()
    progress(f"restoring {file.name} into {conn.safe_url()}")
    try:
        psql = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
    except OSError as exc:  # psql missing or not runnable
        raise BackupError(f"cannot run psql ({exc.strerror}); nothing was restored") from None
    with psql:
        assert psql.stdin is not None and psql.stderr is not None
        failure: BackupError | None = None
        try:
            psql.stdin.write(head)
            with _scanned(file, handle, manifest.format, dropped) as chunks:
                for chunk in chunks:
                    psql.stdin.write(chunk)
            psql.stdin.write(tail)
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
        hint = ("; another session holds a lock on the schema's tables (the restore waits at "
                f"most {LOCK_TIMEOUT})") if "lock timeout" in lines[0] else ""
        raise BackupError(f"restore failed and was rolled back: {lines[0]}{hint}")
    progress("restored and checked against the manifest")
    return manifest
