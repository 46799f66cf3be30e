"""Parse a ``DATABASE_URL`` with the guide's Prisma-style parameters into driver settings.

Accepted query parameters:

* ``connection_limit``: pool size (default: CPU cores x 2 + 1, as the guide says);
* ``pool_timeout``: seconds to wait for a pooled connection (default 10);
* ``connect_timeout``: seconds libpq waits for the server (passed to libpq);
* ``pgbouncer=true``: never prepare statements server-side (transaction-mode PgBouncer);
* ``schema``: the ``search_path`` for every connection;
* ``sslmode`` and the other libpq keywords in ``LIBPQ_KEYWORDS``: passed through as they are.

Anything else is rejected, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.engine import URL, make_url

from shared_db.errors import ConfigError

LIBPQ_KEYWORDS = frozenset({
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword", "sslnegotiation",
    "application_name", "options", "target_session_attrs", "keepalives", "keepalives_idle",
    "keepalives_interval", "keepalives_count", "tcp_user_timeout", "gssencmode", "channel_binding",
    "krbsrvname", "passfile", "service", "host", "hostaddr", "port", "load_balance_hosts",
    "requiressl", "connect_timeout",
})
PRISMA_PARAMETERS = frozenset({"connection_limit", "pool_timeout", "pgbouncer", "schema"})
ACCEPTED_PARAMETERS = PRISMA_PARAMETERS | LIBPQ_KEYWORDS
SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def default_pool_size() -> int:
    """The guide's default: number of cores x 2 + 1."""
    return (os.cpu_count() or 1) * 2 + 1


@dataclass(frozen=True)
class ConnectionSettings:
    """What one database URL means for the engine, the pool and libpq."""

    url: URL
    """SQLAlchemy URL for psycopg, with only libpq keywords left in its query."""
    pool_size: int
    pool_timeout: float
    pgbouncer: bool = False
    schema: str | None = None
    libpq: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return self.url.database or ""

    def libpq_url(self) -> str:
        """A ``postgresql://`` URL that libpq tools (psql, pg_dump) accept."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def safe_url(self) -> str:
        """The URL with its password hidden, for logs and messages."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    def with_database(self, name: str) -> ConnectionSettings:
        return ConnectionSettings(self.url.set(database=name), self.pool_size, self.pool_timeout,
                                  self.pgbouncer, self.schema, self.libpq)


def _positive(name: str, raw: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(name, f"must be a positive {kind.__name__}, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(name, f"must be a positive {kind.__name__}, got {raw!r}")
    return value


def _flag(name: str, raw: str) -> bool:
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")


def parse_database_url(raw: str, *, field_name: str = "DATABASE_URL") -> ConnectionSettings:
    """Validate ``raw`` and split it into engine URL, pool settings and libpq keywords.

    Raises:
        ConfigError: the URL is malformed or carries an unknown or invalid parameter.
    """
    parts = urlsplit(raw.strip())
    if parts.scheme not in SCHEMES:
        raise ConfigError(field_name, f"must start with postgresql://, got {parts.scheme or raw!r}")
    try:
        url = make_url(raw.strip())
        _ = parts.port  # urllib validates the range 0-65535
    except Exception as exc:
        raise ConfigError(field_name, f"is not a valid URL ({exc})") from None
    if not url.database:
        raise ConfigError(field_name, "must name a database, e.g. postgresql://host:5432/app")
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(params) - ACCEPTED_PARAMETERS)
    if unknown:
        accepted = ", ".join([*sorted(PRISMA_PARAMETERS), "sslmode", "and libpq keywords"])
        raise ConfigError(f"{field_name} parameter {unknown[0]!r}",
                          f"is not accepted; accepted: {accepted}")
    pool_size = (int(_positive("connection_limit", params.pop("connection_limit"), int))
                 if "connection_limit" in params else default_pool_size())
    pool_timeout = (_positive("pool_timeout", params.pop("pool_timeout"), float)
                    if "pool_timeout" in params else 10.0)
    if "connect_timeout" in params:
        _positive("connect_timeout", params["connect_timeout"], int)
    pgbouncer = _flag("pgbouncer", params.pop("pgbouncer")) if "pgbouncer" in params else False
    schema = params.pop("schema", None) or None
    engine_url = url.set(drivername="postgresql+psycopg", query=params)
    return ConnectionSettings(engine_url, pool_size, pool_timeout, pgbouncer, schema, params)
