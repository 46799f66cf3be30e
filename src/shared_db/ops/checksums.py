"""Per-table row counts and content checksums, the manifest that carries them, and the SQL that
checks a restored database against it before the restore commits.

A table's checksum is the sum of the first 60 bits of each row's md5 (``md5(row::text)``): it
does not depend on row order, costs one pass, and is computed in a session pinned to UTC and ISO
dates so the same rows give the same text on any server.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from shared_db.errors import BackupError

SESSION = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; " \
          "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3; " \
          "SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C'"
TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename"
CHECKSUM = ("SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)"
            "::bigint), 0)::text FROM {} t")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


EXTENSIONS: dict[str, str] = {"custom": ".dump", "sql.gz": ".sql.gz"}
"""The backup formats, each with how its file's name ends."""
BIGINT = 2**63 - 1
CHECKSUM_DIGITS = 38  # a sum of at most 2**63 values of 60 bits is below 2**123
MAX_MANIFEST_BYTES = 64 << 20
MAX_DURATION = 10**9
DIGITS = re.compile(r"[0-9]+")
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Manifest:
    file: str
    format: str
    bytes: int
    sha256: str
    duration_s: float
    created_at: str
    server_version: str
    pg_dump_version: str
    database: str
    schema: str
    migrations: dict[str, str | None] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def write(self, path: Path) -> None:
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n")
        partial.replace(path)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """The manifest at ``path``.

        Raises:
            BackupError: it is missing, unreadable, not JSON, or breaks a rule of
                ``parse_manifest`` (the message names the field and the rule).
        """
        try:
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                raise BackupError(f"{path} is not a shared-db manifest (larger than "
                                  f"{MAX_MANIFEST_BYTES >> 20} MiB)")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BackupError(f"no manifest at {path}: shared-db restores only backups it made "
                              "(the manifest lies beside the file)") from None
        except IsADirectoryError:
            raise BackupError(f"{path} is a directory, not a manifest") from None
        except OSError as exc:
            raise BackupError(f"cannot read the manifest {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise BackupError(f"{path} is not a shared-db manifest (not UTF-8 text: {exc.reason} "
                              f"at byte {exc.start})") from None
        try:
            doc = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            raise BackupError(f"{path} is not a shared-db manifest (not JSON: {reason})") from None
        try:
            return parse_manifest(doc)
        except ManifestFieldError as exc:
            raise BackupError(f"{path} is not a valid shared-db manifest: {exc}") from None


class ManifestFieldError(ValueError):
    """A manifest field breaks its rule; the text names the field, the rule and the value."""

    def __init__(self, name: str, rule: str, value: object = ...) -> None:
        super().__init__(f"{name} {rule}" + ("" if value is ... else f", got {_shown(value)}"))
        self.field = name


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _shown(value: object) -> str:
    """A value as the message shows it: its JSON kind for containers, short otherwise."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > 40:
        text = f"{text[:30]}... ({len(text)} characters)"
    return text


def _string(doc: dict[str, Any], name: str) -> str:
    value = doc[name]
    if not isinstance(value, str):
        raise ManifestFieldError(name, "must be a string", value)
    return value


def _whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BIGINT:
        raise ManifestFieldError(name, f"must be a whole number from 0 to {BIGINT}", value)
    return value


def _table_name(name: str) -> bool:
    """Any name PostgreSQL holds (a quoted identifier can be ``Weird Name`` or ``café``): every
    use of it is quoted (``%I``, ``sql.Identifier``, an array of literals)."""
    try:
        size = len(name.encode())
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \\ud800 can spell
        return False
    return 0 < size <= 63 and "\x00" not in name


def _tables(value: object) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise ManifestFieldError("tables", "must be an object of table name to "
                                 '{"rows": N, "checksum": "DIGITS"}', value)
    tables: dict[str, dict[str, Any]] = {}
    for name, entry in value.items():
        if not _table_name(name):
            raise ManifestFieldError("tables", "keys must be table names (1 to 63 bytes of "
                                     "UTF-8, no NUL)", name)
        where = f"tables.{name}"
        if not isinstance(entry, dict):
            raise ManifestFieldError(where, 'must be an object {"rows": N, "checksum": '
                                     '"DIGITS"}', entry)
        for key in ("rows", "checksum"):
            if key not in entry:
                raise ManifestFieldError(f"{where}.{key}", "is missing")
        extra = sorted(set(entry) - {"rows", "checksum"})
        if extra:
            raise ManifestFieldError(where, "may hold only rows and checksum", extra[0])
        rows = _whole(entry["rows"], f"{where}.rows")
        checksum = entry["checksum"]
        if not isinstance(checksum, str) or not DIGITS.fullmatch(checksum) \
                or len(checksum) > CHECKSUM_DIGITS:
            raise ManifestFieldError(f"{where}.checksum", "must be a string of 1 to "
                                     f"{CHECKSUM_DIGITS} decimal digits", checksum)
        tables[name] = {"rows": rows, "checksum": checksum}
    return tables


def _migrations(value: object) -> dict[str, str | None]:
    if not isinstance(value, dict):
        raise ManifestFieldError("migrations", "must be an object of chain name to revision "
                                 "(a string, or null)", value)
    for chain, head in value.items():
        if head is not None and not isinstance(head, str):
            where = f"migrations.{chain}" if NAME.match(chain) else f"migrations[{_shown(chain)}]"
            raise ManifestFieldError(where, "must be a revision (a string) or "
                                     "null", head)
    return dict(value)


def parse_manifest(doc: object) -> Manifest:
    """The manifest a parsed ``backup_*.manifest.json`` holds, every field checked.

    Raises:
        ManifestFieldError: a field is missing, unknown, of the wrong type or out of range.
    """
    if not isinstance(doc, dict):
        raise ManifestFieldError("the manifest", "must be a JSON object", doc)
    names = [f.name for f in fields(Manifest)]
    for name in names:
        if name not in doc:
            raise ManifestFieldError(name, "is missing")
    unknown = sorted(set(doc) - set(names))
    if unknown:
        raise ManifestFieldError(f"field {_shown(unknown[0])}", "is unknown (not one that "
                                 "shared-db writes)")
    file = _string(doc, "file")
    if not file or "/" in file or "\\" in file or file in (".", ".."):
        raise ManifestFieldError("file", "must be a file name, without a folder", file)
    fmt = _string(doc, "format")
    if fmt not in EXTENSIONS:
        raise ManifestFieldError("format", f"must be one of {', '.join(EXTENSIONS)}", fmt)
    sha256 = _string(doc, "sha256")
    if not SHA256.fullmatch(sha256):
        raise ManifestFieldError("sha256", "must be 64 lower-case hexadecimal digits", sha256)
    duration = doc["duration_s"]
    if isinstance(duration, bool) or not isinstance(duration, int | float) \
            or not 0 <= duration <= MAX_DURATION:
        raise ManifestFieldError("duration_s", f"must be a number of seconds from 0 to "
                                 f"{MAX_DURATION}", duration)
    created_at = _string(doc, "created_at")
    try:
        datetime.fromisoformat(created_at)
    except ValueError:
        raise ManifestFieldError("created_at", "must be an ISO 8601 date and time",
                                 created_at) from None
    schema = _string(doc, "schema")
    if not NAME.match(schema):
        raise ManifestFieldError("schema", "must be a schema name (a letter or _, then letters, "
                                 "digits or _, at most 63)", schema)
    return Manifest(
        file=file, format=fmt, bytes=_whole(doc["bytes"], "bytes"), sha256=sha256,
        duration_s=float(duration), created_at=created_at,
        server_version=_string(doc, "server_version"),
        pg_dump_version=_string(doc, "pg_dump_version"), database=_string(doc, "database"),
        schema=schema, migrations=_migrations(doc["migrations"]),
        tables=_tables(doc["tables"]))


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(backup: Path) -> Path:
    """Where the manifest of ``backup_X.dump`` or ``backup_X.sql.gz`` lives."""
    stem = backup.name.removesuffix(".sql.gz").removesuffix(".dump")
    return backup.with_name(f"{stem}.manifest.json")


def table_checksum(conn: psycopg.Connection[Any], table: sql.Composable) -> tuple[int, str]:
    """Rows and checksum of one table, read in the connection's transaction (which this pins
    to UTC and ISO output, so the same rows give the same sum on any server)."""
    conn.execute(SESSION)
    rows, checksum = conn.execute(sql.SQL(CHECKSUM).format(table)).fetchone() or (0, "0")
    return int(rows), str(checksum)


def table_checksums(conn: psycopg.Connection[Any], schema: str) -> dict[str, dict[str, Any]]:
    """Rows and checksum of every table in ``schema``, read in the connection's transaction."""
    found: dict[str, dict[str, Any]] = {}
    for (table,) in conn.execute(TABLES, (schema,)).fetchall():
        rows, checksum = table_checksum(conn, sql.Identifier(schema, table))
        found[table] = {"rows": rows, "checksum": checksum}
    return found


# Run by psql around the restored script, in the same transaction. What varies is written in
# as SQL literals and identifiers quoted by psycopg, never as psql variables: psql would replace
# ``:name`` in the script too wherever a variable of that name is set.
PROLOGUE = """DROP SCHEMA IF EXISTS {schema} CASCADE;
CREATE SCHEMA {schema};
SET client_min_messages = warning;
"""
EPILOGUE = """
CREATE FUNCTION pg_temp.shared_db_check(sch text, names text[], rows bigint[], sums text[])
RETURNS void LANGUAGE plpgsql AS $check$
DECLARE n bigint; c text; extra text;
BEGIN
  PERFORM set_config('TimeZone', 'UTC', true);
  PERFORM set_config('DateStyle', 'ISO, YMD', true);
  PERFORM set_config('IntervalStyle', 'postgres', true);
  PERFORM set_config('extra_float_digits', '3', true);
  PERFORM set_config('bytea_output', 'hex', true);
  PERFORM set_config('lc_monetary', 'C', true);
  SELECT string_agg(tablename, ', ') INTO extra FROM pg_catalog.pg_tables
    WHERE schemaname = sch AND tablename <> ALL (names);
  IF extra IS NOT NULL THEN
    RAISE EXCEPTION 'restore check failed: tables not in the manifest: %', extra;
  END IF;
  FOR i IN 1 .. coalesce(array_length(names, 1), 0) LOOP
    EXECUTE format('SELECT count(*), coalesce(sum((''x'' || substr(md5(t::text), 1, 15))'
                   '::bit(60)::bigint), 0)::text FROM %I.%I t', sch, names[i]) INTO n, c;
    IF n <> rows[i] OR c <> sums[i] THEN
      RAISE EXCEPTION 'restore check failed for %: % rows, checksum %; the manifest says % rows, '
        'checksum %', names[i], n, c, rows[i], sums[i];
    END IF;
  END LOOP;
END $check$;
SELECT pg_temp.shared_db_check({schema_name}, {tables},
                               string_to_array({rows}, ',')::bigint[],
                               string_to_array({sums}, ','));
"""


def _checked_schema(schema: str) -> str:
    if not NAME.match(schema):
        raise BackupError(f"schema {schema!r} cannot be checked")
    return schema


def prologue(schema: str) -> str:
    """The SQL that empties ``schema`` before the restored script."""
    query = sql.SQL(PROLOGUE).format(schema=sql.Identifier(_checked_schema(schema)))
    return query.as_string(None)


def epilogue(manifest: Manifest, schema: str) -> str:
    """The SQL that raises unless ``schema``'s tables are exactly the manifest's, with its row
    counts and checksums."""
    names = sorted(manifest.tables)
    rows = [str(int(manifest.tables[n]["rows"])) for n in names]
    sums = [str(int(manifest.tables[n]["checksum"])) for n in names]
    query = sql.SQL(EPILOGUE).format(
        schema_name=sql.Literal(_checked_schema(schema)),
        tables=sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(map(sql.Literal, names))),
        rows=sql.Literal(",".join(rows)), sums=sql.Literal(",".join(sums)))
    return query.as_string(None)
