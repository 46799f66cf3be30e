"""Why doctor could not connect, and what to do about it, per cause."""

from __future__ import annotations

from psycopg import sql

from shared_db.connect import connect_timeout
from shared_db.errors import DatabaseUnavailableError
from shared_db.errors_db import (
    AUTH_FAILED,
    NO_DATABASE,
    NO_OPTIONS,
    NO_SSL,
    NOT_PERMITTED,
    REFUSED,
    TIMED_OUT,
    UNKNOWN_HOST,
    WRONG_ROLE,
    connection_cause,
)
from shared_db.url import ConnectionSettings


def shown(statement: sql.Composed) -> str:
    """A statement for the reader to run, its identifiers quoted as the server needs them."""
    return statement.as_string(None)


def set_search_path(schema: str) -> str:
    """The statement that makes ``schema`` a session's search_path, for a fix to quote."""
    return shown(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))


def grant(what: sql.Composable, role: str | None) -> str:
    return shown(sql.SQL("GRANT {} TO {}").format(what, sql.Identifier(role or "<role>")))


def _fixes(conn: ConnectionSettings) -> dict[str, str]:
    host, port, user = conn.url.host or "localhost", conn.url.port or 5432, conn.url.username
    create = shown(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(conn.database)))
    return {
        REFUSED: f"nothing listens on {host}:{port}: start the server (with DATABASE_URL "
                 "unset, `shared-db db start` starts the embedded one) or fix the port",
        TIMED_OUT: f"no answer within connect_timeout ({connect_timeout(conn)} s): check the "
                   "host, port and firewall, or raise connect_timeout in the URL (e.g. "
                   "?connect_timeout=60) on a slow network (guide 12.1, connection timeout)",
        AUTH_FAILED: f"check the user ({user}) and password in the URL, and the server's "
                     "pg_hba.conf",
        NO_DATABASE: f"create it ({create}) or fix the URL's database",
        UNKNOWN_HOST: f"fix the host name ({host}) in the URL, or its DNS entry",
        NOT_PERMITTED: grant(sql.SQL("CONNECT ON DATABASE {}").format(
            sql.Identifier(conn.database)), user),
        NO_SSL: f"the URL asks for SSL (sslmode={conn.libpq.get('sslmode')}) and the server "
                "has none: turn ssl on in the server's postgresql.conf, or give a sslmode it "
                "serves (prefer, allow or disable) where the network allows it",
        NO_OPTIONS: "schema= travels as the startup parameter options, which PgBouncer "
                    "refuses: list options in PgBouncer's ignore_startup_parameters and set the "
                    f"schema on its server connections (connect_query = "
                    f"'{set_search_path(conn.schema or 'schema')}' for that database), or leave "
                    "schema out",
        WRONG_ROLE: "a host answered, but none as target_session_attrs="
                    f"{conn.libpq.get('target_session_attrs', 'any')} asks (a failover under "
                    "way, or a cluster without a leader): check the cluster manager (e.g. "
                    "patronictl list); the client connects again once a host has the role",
    }


def why_unreachable(conn: ConnectionSettings, error: DatabaseUnavailableError,
                    ) -> tuple[str, str]:
    """(detail, fix) for a failed connection; the cause is read from the driver's error."""
    cause = connection_cause(error.__cause__ or error)
    fix = _fixes(conn).get(cause, "check that the server runs and the URL is right; with "
                                  "DATABASE_URL unset `shared-db db start` starts the "
                                  "embedded server")
    return str(error), fix
