"""Remembering that a database had no drift, so ``migrate status`` need not compare it again.

The full comparison (Alembic's autogenerate against every model) costs most of a second in
imports and reflection. Its answer depends only on the database's schema, the package's code
(models, chain ownership, the comparison itself) and the versions of the libraries that
compare. So a clean answer is remembered under a key made of all of these: a digest of the
catalog (every table, column, type, default, index, constraint, enum label, view, trigger and
comment in the schemas on the search path, read in one statement), a digest of the package's
source files and the library versions. Any change to any of them is a new key, and the full
comparison runs again. Only clean answers are kept: drift is described by the full comparison
every time. The store is a directory of empty files named by key; losing it costs one slow run.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psycopg

PACKAGE = Path(__file__).resolve().parents[1]
COMPARERS = ("sqlalchemy", "alembic", "alembic-postgresql-enum", "psycopg")

CATALOG = """
WITH rel AS (
    SELECT c.oid, c.relkind, c.oid::regclass::text AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY (current_schemas(false))
), lines AS (
    SELECT concat_ws(' ', 'rel', name, relkind,
                     obj_description(oid, 'pg_class')) AS line FROM rel
    UNION ALL
    SELECT concat_ws(' ', 'col', r.name, a.attnum, a.attname,
                     format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
                     a.attgenerated, pg_get_expr(d.adbin, d.adrelid),
                     col_description(r.oid, a.attnum))
    FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT concat_ws(' ', 'idx', pg_get_indexdef(i.indexrelid), i.indisvalid)
    FROM pg_index i JOIN rel r ON r.oid = i.indrelid
    UNION ALL
    SELECT concat_ws(' ', 'con', r.name, c.conname, pg_get_constraintdef(c.oid),
                     c.convalidated, c.condeferrable, c.condeferred)
    FROM pg_constraint c JOIN rel r ON r.oid = c.conrelid
    UNION ALL
    SELECT concat_ws(' ', 'enum', t.oid::regtype::text, e.enumsortorder, e.enumlabel)
    FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
    JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = ANY (current_schemas(false))
    UNION ALL
    SELECT concat_ws(' ', 'view', name, pg_get_viewdef(oid)) FROM rel WHERE relkind IN ('v', 'm')
    UNION ALL
    SELECT concat_ws(' ', 'trigger', pg_get_triggerdef(t.oid))
    FROM pg_trigger t JOIN rel r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
)
SELECT concat_ws(' ', current_setting('server_version_num'), current_schemas(false)::text,
                 md5(string_agg(line, E'\\n' ORDER BY line)))
FROM lines
"""


def catalog_digest(conn: psycopg.Connection[Any]) -> str:
    """One line standing for the whole schema on ``conn``'s search path."""
    row = conn.execute(CATALOG).fetchone()
    assert row is not None
    return str(row[0])


@cache
def code_digest() -> str:
    """A digest of the package's source files and the comparing libraries' versions."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(PACKAGE)).encode())
        digest.update(path.read_bytes())
    for name in COMPARERS:
        try:
            digest.update(f"{name}=={version(name)}".encode())
        except PackageNotFoundError:
            digest.update(f"{name} missing".encode())
    return digest.hexdigest()


def key(catalog: str, chains: tuple[str, ...]) -> str:
    """The name a clean comparison of ``chains`` against ``catalog`` is remembered under."""
    text = "\n".join([code_digest(), catalog, ",".join(chains)])
    return hashlib.sha256(text.encode()).hexdigest()


def known_clean(directory: Path, name: str) -> bool:
    return (directory / "drift" / name).is_file()


def remember_clean(directory: Path, name: str) -> None:
    """Keep a clean answer; a store that cannot be written only means slower runs."""
    folder = directory / "drift"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.{os.getpid()}"
        partial.touch()
        partial.replace(folder / name)  # whole or absent, even with two commands at once
    except OSError:
        pass
