"""``shared-db roles``: one login role per service, with rights on what that service uses only.

Each role gets all four table rights on its service's own tables, and beyond them only what the
package's own code needs from other services, column by column where possible:

* every service writes audit rows: ``INSERT`` on ``audit_logs`` (never read or change them);
* payments and profile check the user they name: ``SELECT`` on ``users (id, deleted_at)``
  (payments also ``email, role`` for its report), never ``password_hash``; per service that
  check locks the user ``FOR KEY SHARE``, which PostgreSQL allows only with an ``UPDATE`` right,
  so they get ``UPDATE`` on ``users (updated_at)`` and nothing else there;
* auth reads profiles and payments for its eager loads and creates a user's profile with the
  user (guide 6.1); per service it also deletes a deleted user's profile (in the shared
  database the foreign key's cascade does that as the table owner).

A service's process uses its own role in every URL it has (per service, also in the other
services' databases), so what it can reach is exactly this list.

Shared topology: the grants are made in the one database. Per service: each grant is made in the
database that holds the table, so a role reaches no table of another database beyond the list
above. Roles are created ``LOGIN`` without a password; set one with ``ALTER ROLE ... PASSWORD``
(or use the server's own authentication). Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from shared_db.engine import connect_to
from shared_db.errors import ConfigError
from shared_db.ops.chains import tables_of
from shared_db.ops.targets import Target
from shared_db.services import SERVICES

OWN = "SELECT, INSERT, UPDATE, DELETE"


@dataclass(frozen=True)
class Grant:
    service: str
    table: str
    privileges: str
    columns: tuple[str, ...] = ()

    def describe(self, role: str) -> str:
        cols = f" ({', '.join(self.columns)})" if self.columns else ""
        return f"{role}: {self.privileges}{cols} ON {self.table}"


def grants(per_service: bool) -> list[Grant]:
    """The rights of every service's role in the given topology."""
    found = [Grant(s, t, OWN) for s in SERVICES for t in tables_of(s)]
    found += [Grant(s, "audit_logs", "INSERT") for s in ("auth", "payments", "profile")]
    found += [Grant("auth", "user_profiles", "SELECT, INSERT"),
              Grant("auth", "payments", "SELECT"),
              Grant("payments", "users", "SELECT", ("id", "email", "role", "deleted_at")),
              Grant("profile", "users", "SELECT", ("id", "deleted_at"))]
    if per_service:
        found += [Grant("auth", "user_profiles", "DELETE"),
                  Grant("payments", "users", "UPDATE", ("updated_at",)),
                  Grant("profile", "users", "UPDATE", ("updated_at",))]
    else:
        found.append(Grant("payments", "payment_reports", "SELECT"))
    return found


def role_name(prefix: str, service: str) -> str:
    return f"{prefix}{service}"


def _owner(table: str) -> str:
    return next((s for s in SERVICES if table in tables_of(s)), "payments")  # the view


def apply(targets: list[Target], prefix: str = "shared_db_") -> list[str]:
    """Create the roles (if missing) and grant their rights; returns what was granted."""
    if not prefix or not prefix.replace("_", "").isalnum() or not prefix[0].isalpha():
        raise ConfigError("prefix", f"must be letters, digits and _, starting with a letter, "
                          f"got {prefix!r}")
    per_service = len(targets) > 1
    done: list[str] = []
    for target in targets:
        with connect_to(target.connection) as conn, conn.begin():
            raw = conn.connection.driver_connection
            assert raw is not None
            for service in SERVICES:
                role = role_name(prefix, service)
                exists = raw.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if exists.fetchone() is None:
                    raw.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                raw.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(target.connection.database), sql.Identifier(role)))
                raw.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                    sql.Identifier(target.connection.schema or "public"),
                    sql.Identifier(role)))
            for grant in grants(per_service):
                if per_service and _owner(grant.table) != target.name:
                    continue
                role = role_name(prefix, grant.service)
                columns: sql.Composable = sql.SQL("")
                if grant.columns:
                    columns = sql.SQL(" ({})").format(sql.SQL(", ").join(
                        map(sql.Identifier, grant.columns)))
                raw.execute(sql.SQL("GRANT {}{} ON {} TO {}").format(
                    sql.SQL(grant.privileges), columns, sql.Identifier(grant.table),
                    sql.Identifier(role)))
                done.append(f"{target.name}: {grant.describe(role)}")
    return done
