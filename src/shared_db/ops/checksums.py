"""Per-table row counts and content checksums, the manifest that carries them, and the SQL that
checks a restored database against it before the restore commits.

A table's checksum is the sum of the first 60 bits of each row's md5 (``md5(row::text)``): it
does not depend on row order, costs one pass, and is computed in a session pinned to UTC and ISO
dates so the same rows give the same text on any server.
"""

from __future__ import annotations

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
CHECK_TAG = "$shared_db_check$"


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


def manifest_path(backup: Path) -> Path:
    """Where the manifest of ``backup_X.dump`` or ``backup_X.sql.gz`` lives."""
    stem = backup.name.removesuffix(".sql.gz").removesuffix(".dump")
    return backup.with_name(f"{stem}.manifest.json")


def table_checksums(conn: psycopg.Connection[Any], schema: str) -> dict[str, dict[str, Any]]:
    """Rows and checksum of every table in ``schema``, read in the connection's transaction."""
    conn.execute(SESSION)
    found: dict[str, dict[str, Any]] = {}
    for (table,) in conn.execute(TABLES, (schema,)).fetchall():
        query = sql.SQL(CHECKSUM).format(sql.Identifier(schema, table))
        rows, checksum = conn.execute(query).fetchone() or (0, "0")
        found[table] = {"rows": rows, "checksum": checksum}
    return found


def verification_sql(manifest: Manifest, schema: str) -> str:
    """A DO block that raises (so the restore rolls back) unless every table matches.

    It runs inside psql's script, where there are no bind parameters; what it interpolates is
    checked first: names against ``NAME`` (``Manifest.read`` refuses others) and numbers by int().
    """
    if not NAME.match(schema):
        raise BackupError(f"schema {schema!r} cannot be checked")
    checks = []
    for table, entry in sorted(manifest.tables.items()):
        target = f'"{schema}"."{table}"'
        checks.append(
            f"  SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)"  # noqa: S608
            f"::bigint), 0)::text INTO n, c FROM {target} t;\n"
            f"  IF n <> {int(entry['rows'])} OR c <> '{int(entry['checksum'])}' THEN\n"
            f"    RAISE EXCEPTION 'restore check failed for {table}: % rows, checksum %; "
            f"the manifest says {int(entry['rows'])} rows', n, c;\n  END IF;")
    wanted = ", ".join(f"'{t}'" for t in sorted(manifest.tables)) or "NULL"
    return (
        f"DO {CHECK_TAG} DECLARE n bigint; c text; extra text; BEGIN\n"  # noqa: S608
        "  PERFORM set_config('TimeZone', 'UTC', true);\n"
        "  PERFORM set_config('DateStyle', 'ISO, YMD', true);\n"
        "  PERFORM set_config('IntervalStyle', 'postgres', true);\n"
        "  PERFORM set_config('extra_float_digits', '3', true);\n"
        f"  SELECT string_agg(tablename, ', ') INTO extra FROM pg_tables\n"
        f"    WHERE schemaname = '{schema}' AND tablename NOT IN ({wanted});\n"
        "  IF extra IS NOT NULL THEN\n"
        "    RAISE EXCEPTION 'restore check failed: tables not in the manifest: %', extra;\n"
        "  END IF;\n" + "\n".join(checks) + f"\nEND {CHECK_TAG};\n"
    )
