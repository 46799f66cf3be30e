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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from shared_db.errors import BackupError

SESSION = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; " \
          "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3"
TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename"
CHECKSUM = ("SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)"
            "::bigint), 0)::text FROM {} t")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


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
        """The manifest at ``path``. Raises BackupError when it is missing or not ours."""
        try:
            doc = json.loads(path.read_text())
            manifest = cls(**doc)
        except FileNotFoundError:
            raise BackupError(f"no manifest at {path}: shared-db restores only backups it made "
                              "(the manifest lies beside the file)") from None
        except (ValueError, TypeError) as exc:
            raise BackupError(f"{path} is not a shared-db manifest ({exc})") from None
        for name, entry in manifest.tables.items():
            if not NAME.match(name) or not isinstance(entry.get("rows"), int) or not str(
                    entry.get("checksum", "")).isdigit():
                raise BackupError(f"{path} is not a shared-db manifest (table entry {name!r})")
        return manifest


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


# Run by psql after the restored script, in the same transaction. Everything that varies comes
# in as psql variables (``-v``, quoted by psql as :'name'), so no value is ever spliced into SQL.
PROLOGUE = """DROP SCHEMA IF EXISTS :"schema" CASCADE;
CREATE SCHEMA :"schema";
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
  SELECT string_agg(tablename, ', ') INTO extra FROM pg_catalog.pg_tables
    WHERE schemaname = sch AND tablename <> ALL (names);
  IF extra IS NOT NULL THEN
    RAISE EXCEPTION 'restore check failed: tables not in the manifest: %', extra;
  END IF;
  FOR i IN 1 .. coalesce(array_length(names, 1), 0) LOOP
    EXECUTE format('SELECT count(*), coalesce(sum((''x'' || substr(md5(t::text), 1, 15))'
                   '::bit(60)::bigint), 0)::text FROM %I.%I t', sch, names[i]) INTO n, c;
    IF n <> rows[i] OR c <> sums[i] THEN
      RAISE EXCEPTION 'restore check failed for %: % rows, checksum %; the manifest says % rows',
        names[i], n, c, rows[i];
    END IF;
  END LOOP;
END $check$;
SELECT pg_temp.shared_db_check(:'schema', string_to_array(:'tables', ','),
                               string_to_array(:'rows', ',')::bigint[],
                               string_to_array(:'sums', ','));
"""


def psql_variables(manifest: Manifest, schema: str) -> list[str]:
    """``-v`` arguments carrying the schema and the manifest's expectations to psql."""
    if not NAME.match(schema):
        raise BackupError(f"schema {schema!r} cannot be checked")
    names = sorted(manifest.tables)
    rows = [str(int(manifest.tables[n]["rows"])) for n in names]
    sums = [str(int(manifest.tables[n]["checksum"])) for n in names]
    return ["-v", f"schema={schema}", "-v", f"tables={','.join(names)}",
            "-v", f"rows={','.join(rows)}", "-v", f"sums={','.join(sums)}"]
