"""What a restore checks besides the file itself: the manifest's migration heads, the objects of
other schemas that emptying the target schema would take with it, and how long it waits for
locks.

``DROP SCHEMA ... CASCADE`` drops whatever depends on the schema's objects wherever it lives: a
view ``keep.v`` over ``public.users``, the foreign key of ``keep.t``, a trigger of ``keep.t2``
calling a function of ours, a column of another schema's table typed with one of our enums.
``OUTSIDE`` follows ``pg_depend`` from the schema to everything inside it and lists what depends
on those objects from elsewhere (toast tables aside: they belong to their table). Entries with
no schema of their own count in the schema they live in: a default privilege ``IN SCHEMA`` (it
goes with its schema) and an operator family's members. Those of no schema at all that the drop
takes with it are listed: an event trigger calling our function, a publication's schema or
table, a cast, a foreign-data wrapper of our extension. A restore
with any such object is refused before anything is sent, and again inside the restore's own
transaction just before the schema is emptied (``GUARD``), so an object made in between is not
dropped either.

The restore waits at most ``LOCK_TIMEOUT`` for the locks that emptying the schema takes (another
session using its tables holds them) and then fails and rolls back, instead of waiting forever;
the dump's own ``SET lock_timeout = 0`` applies only after that, to objects no one else sees.
"""

from __future__ import annotations

from pathlib import Path

from psycopg import sql

from shared_db.connect import connect_direct
from shared_db.errors import BackupError, MigrationError
from shared_db.ops.checksums import Manifest
from shared_db.ops.history import chain_steps
from shared_db.ops.versions import CHAINS
from shared_db.url import ConnectionSettings

LOCK_TIMEOUT = "30s"
SHOWN = 10

# Rules, triggers, defaults and policies have no schema of their own: their table's counts;
# an extension's is the one it was created in, a default privilege's the one it is IN, an
# operator family member's its family's. SCHEMA stands for the schema's name.
OUTSIDE = """
WITH RECURSIVE owned AS (
  SELECT d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid,
    coalesce((pg_catalog.pg_identify_object(d.classid, d.objid, 0)).schema, CASE d.classid
      WHEN 'pg_catalog.pg_rewrite'::regclass THEN (SELECT n.nspname FROM pg_catalog.pg_rewrite x
        JOIN pg_catalog.pg_class c ON c.oid = x.ev_class JOIN pg_catalog.pg_namespace n
        ON n.oid = c.relnamespace WHERE x.oid = d.objid)
      WHEN 'pg_catalog.pg_trigger'::regclass THEN (SELECT n.nspname FROM pg_catalog.pg_trigger x
        JOIN pg_catalog.pg_class c ON c.oid = x.tgrelid JOIN pg_catalog.pg_namespace n
        ON n.oid = c.relnamespace WHERE x.oid = d.objid)
      WHEN 'pg_catalog.pg_attrdef'::regclass THEN (SELECT n.nspname FROM pg_catalog.pg_attrdef x
        JOIN pg_catalog.pg_class c ON c.oid = x.adrelid JOIN pg_catalog.pg_namespace n
        ON n.oid = c.relnamespace WHERE x.oid = d.objid)
      WHEN 'pg_catalog.pg_policy'::regclass THEN (SELECT n.nspname FROM pg_catalog.pg_policy x
        JOIN pg_catalog.pg_class c ON c.oid = x.polrelid JOIN pg_catalog.pg_namespace n
        ON n.oid = c.relnamespace WHERE x.oid = d.objid)
      WHEN 'pg_catalog.pg_extension'::regclass THEN (SELECT n.nspname
        FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace n
        ON n.oid = x.extnamespace WHERE x.oid = d.objid)
      WHEN 'pg_catalog.pg_default_acl'::regclass THEN (SELECT n.nspname
        FROM pg_catalog.pg_default_acl x JOIN pg_catalog.pg_namespace n
        ON n.oid = x.defaclnamespace WHERE x.oid = d.objid)
      WHEN 'pg_catalog.pg_amop'::regclass THEN (SELECT n.nspname FROM pg_catalog.pg_amop x
        JOIN pg_catalog.pg_opfamily f ON f.oid = x.amopfamily JOIN pg_catalog.pg_namespace n
        ON n.oid = f.opfnamespace WHERE x.oid = d.objid)
      WHEN 'pg_catalog.pg_amproc'::regclass THEN (SELECT n.nspname FROM pg_catalog.pg_amproc x
        JOIN pg_catalog.pg_opfamily f ON f.oid = x.amprocfamily JOIN pg_catalog.pg_namespace n
        ON n.oid = f.opfnamespace WHERE x.oid = d.objid)
    END) AS schema
  FROM pg_catalog.pg_depend d
), inside(classid, objid) AS (
  SELECT 'pg_catalog.pg_namespace'::regclass::oid, oid FROM pg_catalog.pg_namespace
   WHERE nspname = SCHEMA
  UNION
  SELECT o.classid, o.objid FROM owned o
    JOIN inside i ON o.refclassid = i.classid AND o.refobjid = i.objid
   WHERE o.schema = SCHEMA
)
SELECT DISTINCT pg_catalog.pg_describe_object(o.classid, o.objid, o.objsubid) AS what
  FROM owned o JOIN inside i ON o.refclassid = i.classid AND o.refobjid = i.objid
 WHERE o.schema IS DISTINCT FROM SCHEMA AND o.schema IS DISTINCT FROM 'pg_toast'
 ORDER BY 1"""

_GUARD_HEAD = """CREATE FUNCTION pg_temp.shared_db_outside(sch text) RETURNS void LANGUAGE plpgsql
AS $guard$
DECLARE listed text;
BEGIN
  SELECT string_agg(what, '; ') INTO listed FROM ("""
_GUARD_TAIL = """) deps;
  IF listed IS NOT NULL THEN
    RAISE EXCEPTION 'restore refused: objects outside schema % depend on it and would be '
      'dropped with it: %', sch, listed;
  END IF;
END $guard$;
"""
# Sent by psql before our prologue, then called by ``guard(schema)``; made of constants only.
GUARD = "".join((sql.SQL("SET LOCAL lock_timeout = {};\n").format(sql.Literal(LOCK_TIMEOUT))
                 .as_string(None), _GUARD_HEAD, OUTSIDE.replace("SCHEMA", "sch"), _GUARD_TAIL))


def guard_call(schema: str) -> str:
    """The statement running ``GUARD``'s check for ``schema`` (a quoted literal)."""
    return sql.SQL("SELECT pg_temp.shared_db_outside({});\n").format(
        sql.Literal(schema)).as_string(None)


def dependents_outside(conn: ConnectionSettings, schema: str) -> list[str]:
    """Objects of other schemas (or of none) that depend on objects in ``schema``."""
    with connect_direct(conn) as db:
        rows = db.execute(OUTSIDE.replace("SCHEMA", "%(schema)s").encode(),
                          {"schema": schema}).fetchall()
    return [str(r[0]) for r in rows]


def refuse_outside(conn: ConnectionSettings, schema: str) -> None:
    """Raises BackupError listing the other schemas' objects that emptying ``schema`` drops."""
    found = dependents_outside(conn, schema)
    if found:
        more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
        raise BackupError(
            f"restore refused, nothing was restored: emptying schema {schema} would drop "
            f"{len(found)} object(s) of other schemas that depend on it: "
            f"{'; '.join(found[:SHOWN])}{more}. Drop or change them first")


def check_migrations(manifest: Manifest, where: Path, migrations_dir: Path) -> None:
    """The manifest's ``migrations`` name known chains at revisions those chains have.

    Raises:
        BackupError: it is empty, names a chain shared-db does not have, or a revision that
            chain's migration files do not define (nor a squash replaced).
    """
    bad = f"{where} is not a valid shared-db manifest: migrations"
    if not manifest.migrations:
        raise BackupError(f"{bad} must name the chains of the backed-up database (a backup "
                          "records every chain, a null head for one never applied), got {}")
    for chain, head in manifest.migrations.items():
        if chain not in CHAINS:
            raise BackupError(f"{bad} names chain {chain!r}, which shared-db does not have "
                              f"(its chains: {', '.join(CHAINS)})")
        if head is None:
            continue
        try:
            steps = chain_steps(migrations_dir, chain)
        except MigrationError as exc:
            raise BackupError(f"cannot check {where}: {exc}") from None
        known = {s.revision for s in steps} | {r for s in steps for r in s.replaces}
        if head not in known:
            raise BackupError(f"{bad}.{chain} is {head!r}, not a revision of chain {chain} in "
                              f"{migrations_dir}")
