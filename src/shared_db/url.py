"""Parse a ``DATABASE_URL`` with the guide's Prisma-style parameters into driver settings.

Accepted query parameters:

* ``connection_limit``: pool size (default: CPU cores x 2 + 1, as the guide says);
* ``pool_timeout``: seconds to wait for a pooled connection (default 10; at least 0.001);
* ``connect_timeout``: whole seconds libpq waits for the server (at least 1; passed to libpq);
* ``pgbouncer=true``: never prepare statements server-side (transaction-mode PgBouncer);
* ``schema``: the ``search_path`` for every connection;
* ``sslmode`` and the other libpq keywords in ``LIBPQ_KEYWORDS``: passed through as they are;
  TCP keepalives default to ``DEFAULT_KEEPALIVES`` unless the URL sets any of them, and
  ``tcp_user_timeout`` to ``DEFAULT_TCP_USER_TIMEOUT``.

Anything else is rejected, so a typo never silently falls back to a default. So is a duration
that libpq or the pool would read as "no limit" or round down to nothing: ``0``, ``0.0001``,
``inf``, ``nan``, and fractions of the whole-number libpq keywords (``connect_timeout``,
``keepalives_idle``, ``keepalives_interval`` in seconds, ``tcp_user_timeout`` in ms).

Several hosts are libpq's multi-host form, ``postgresql://h1:5432,h2:5433/db``, with
``target_session_attrs`` (any, read-write, read-only, primary, standby, prefer-standby) and
``load_balance_hosts`` (disable, random) choosing among them; the URL reaches libpq as written.
The URL is parsed here rather than by SQLAlchemy, whose URL has one host, and so that reading the
settings (every CLI command does) loads no SQLAlchemy.

``repr`` and ``str`` of the settings hide the password (also ``sslpassword``); only
``libpq_url()`` carries it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

from shared_db.errors import ConfigError
from shared_db.pgurl import PgUrl, query_params, split_url
from shared_db.redact import hide_secrets, redact_url
from shared_db.validation import MIN_SECONDS

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
WHOLE_NUMBER_DURATIONS = {"connect_timeout": "seconds", "keepalives_idle": "seconds",
                          "keepalives_interval": "seconds", "tcp_user_timeout": "milliseconds"}
"""libpq keywords holding durations: libpq reads each as a decimal integer, and 0 as no limit
(or the system default)."""
CHOICES = {
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby",
                             "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
}
"""libpq keywords with a fixed set of values: a typo would otherwise surface only at connect."""
INT_MAX = 2**31 - 1
_DIGITS = re.compile(r"[0-9]+")
_PLAIN = re.compile(r"[\w.+\-]{0,40}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def _got(raw: str) -> str:
    # A value is echoed only when it is plainly one: with an unencoded character in a password,
    # a parameter's value could be a piece of the password.
    return repr(raw) if _PLAIN.fullmatch(raw) else "a value with other characters"


DEFAULT_CONNECT_TIMEOUT = 5
"""Seconds libpq waits for a server when the URL sets no ``connect_timeout``: without one it
waits for the operating system to give up on TCP, minutes for a server that never answers."""
DEFAULT_KEEPALIVES = {"keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
"""TCP keepalives for every pooled and command connection whose URL sets none of its own (nor
``keepalives=0``). The system defaults probe after two hours of silence, so a connection through
a load balancer or NAT that forgets idle flows (after minutes, often) dies unnoticed in the pool,
and a reply awaited from a host that vanished without a reset is awaited for hours; probing after
30 s keeps such flows alive and finds a dead peer within about a minute. A long statement does
not trip them: the server's kernel answers the probes however busy its backend is."""
DEFAULT_TCP_USER_TIMEOUT = 60_000
"""Milliseconds sent data may go unacknowledged before the connection is given up (unless the
URL sets ``tcp_user_timeout``): keepalives do not probe while data is unacknowledged, so without
it a statement sent to a vanished host waits for the system's retransmissions, about 15 minutes."""


def default_pool_size() -> int:
    """The guide's default: number of cores x 2 + 1."""
    return (os.cpu_count() or 1) * 2 + 1


@dataclass(frozen=True)
class ConnectionSettings:
    """What one database URL means for the engine, the pool and libpq."""

    url: PgUrl
    """The URL for libpq, with only libpq keywords left in its query."""
    pool_size: int
    pool_timeout: float
    pgbouncer: bool = False
    schema: str | None = None
    libpq: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"ConnectionSettings(url={self.safe_url()!r}, "
                f"pool_size={self.pool_size!r}, pool_timeout={self.pool_timeout!r}, "
                f"pgbouncer={self.pgbouncer!r}, schema={self.schema!r}, "
                f"libpq={hide_secrets(self.libpq)!r})")

    __str__ = __repr__

    @property
    def database(self) -> str:
        return self.url.database or ""

    def libpq_url(self) -> str:
        """A ``postgresql://`` URL that libpq tools (psql, pg_dump) accept."""
        return self.url.render(hide_password=False)

    def safe_url(self) -> str:
        """The URL with its passwords (the user's, ``sslpassword``) hidden, for logs and
        messages."""
        return redact_url(self.url.render(hide_password=True))

    def with_database(self, name: str) -> ConnectionSettings:
        return ConnectionSettings(self.url.set(database=name), self.pool_size, self.pool_timeout,
                                  self.pgbouncer, self.schema, self.libpq)


def _positive(name: str, raw: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(name, f"must be a positive {kind.__name__}, got {_got(raw)}") from None
    if value <= 0:
        raise ConfigError(name, f"must be a positive {kind.__name__}, got {_got(raw)}")
    return value


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= MIN_SECONDS):
        raise ConfigError(name, f"must be a number of seconds of at least {MIN_SECONDS} "
                          f"(1 ms), got {_got(raw)}")
    return value


def _whole_number(name: str, raw: str, unit: str) -> None:
    # Python's int() also takes "1_0", " 5" and non-ASCII digits; libpq takes none of them.
    if not (_DIGITS.fullmatch(raw) and 1 <= int(raw) <= INT_MAX):
        raise ConfigError(name, f"must be a whole number of {unit} from 1 to {INT_MAX} "
                          f"(libpq reads 0 as no limit or the system default), got {_got(raw)}")


def _flag(name: str, raw: str) -> bool:
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(name, f"must be true or false, got {_got(raw)}")


def parse_database_url(raw: str, *, field_name: str = "DATABASE_URL") -> ConnectionSettings:
    """Validate ``raw`` and split it into engine URL, pool settings and libpq keywords.

    Raises:
        ConfigError: the URL is malformed or carries an unknown or invalid parameter.
    """
    raw = raw.strip()
    scheme = raw.partition(":")[0].lower() if "://" in raw else ""
    if scheme not in SCHEMES:
        # Never the URL itself: what precedes a missing scheme may well be a password.
        shown = repr(scheme) if scheme.isascii() and scheme.replace("+", "").isalnum() else (
            "no postgresql:// scheme")
        raise ConfigError(field_name, f"must start with postgresql://, got {shown}")
    url = split_url(raw, field_name)
    if not url.database:
        raise ConfigError(field_name, "must name a database, e.g. postgresql://host:5432/app")
    params = query_params(raw)
    unknown = sorted(set(params) - ACCEPTED_PARAMETERS)
    if unknown:
        accepted = ", ".join([*sorted(PRISMA_PARAMETERS), "sslmode", "and libpq keywords"])
        if not _NAME.fullmatch(unknown[0]):
            raise ConfigError(field_name, "has a query parameter that is not a name (percent-"
                              "encode any '?', '&' or '=' in the user or password); accepted: "
                              f"{accepted}")
        raise ConfigError(f"{field_name} parameter {unknown[0]!r}",
                          f"is not accepted; accepted: {accepted}")
    pool_size = (int(_positive("connection_limit", params.pop("connection_limit"), int))
                 if "connection_limit" in params else default_pool_size())
    pool_timeout = (_seconds("pool_timeout", params.pop("pool_timeout"))
                    if "pool_timeout" in params else 10.0)
    for name, unit in WHOLE_NUMBER_DURATIONS.items():
        if name in params:
            _whole_number(name, params[name], unit)
    pgbouncer = _flag("pgbouncer", params.pop("pgbouncer")) if "pgbouncer" in params else False
    schema = params.pop("schema", None) or None
    for name, allowed in CHOICES.items():
        if name in params and params[name] not in allowed:
            raise ConfigError(name, f"must be one of {', '.join(allowed)}, "
                              f"got {_got(params[name])}")
    return ConnectionSettings(url.set(query=params), pool_size, pool_timeout, pgbouncer, schema,
                              params)
