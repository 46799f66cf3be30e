"""Parse a ``DATABASE_URL`` with the guide's Prisma-style parameters into driver settings.

Accepted query parameters:

* ``connection_limit``: pool size (default: CPU cores x 2 + 1, as the guide says; at most
  ``MAX_POOL_SIZE``);
* ``pool_timeout``: seconds to wait for a pooled connection (default 10; 0.001 to 86400);
* ``connect_timeout``: whole seconds libpq waits for the server (at least 1; passed to libpq);
* ``pgbouncer=true``: never prepare statements server-side (transaction-mode PgBouncer);
* ``port``: checked here (1 to 65535, or one per host, comma-separated);
* ``schema``: the ``search_path`` for every connection, set after any ``options`` the URL
  gives: one schema name (``SCHEMA_NAME``:
  lower-case ASCII letters, digits and ``_``, not starting with a digit or ``pg_``), never a
  list, quotes or spaces, which would reach the server as other settings or other schemas;
* ``sslmode`` and the other libpq keywords in ``LIBPQ_KEYWORDS``: passed through as they are;
  TCP keepalives default to ``DEFAULT_KEEPALIVES`` unless the URL sets any of them, and
  ``tcp_user_timeout`` to ``DEFAULT_TCP_USER_TIMEOUT``.

Anything else is rejected, so a typo never silently falls back to a default; so is a parameter
given twice, an item without ``=``, and ``user``, ``password`` and ``dbname`` (``REFUSED``): they
go in the URL itself, which is what shared-db reads and shows. So is a duration that libpq or the
pool would read as "no limit" or round down to nothing: ``0``, ``0.0001``, ``inf``, ``nan``, and
fractions of the whole-number libpq keywords (``connect_timeout``, ``keepalives_idle``,
``keepalives_interval`` in seconds, ``tcp_user_timeout`` in ms), and a number the system would
refuse at connect (``WHOLE_NUMBERS``: ``keepalives_idle`` and ``keepalives_interval`` up to
32767, ``keepalives_count`` 1 to 127, as Linux takes them). Keywords with a fixed set of values
(``CHOICES``: ``sslmode``, ``gssencmode``, ``channel_binding``, ...) are checked here, not at
connect. No value may hold a NUL byte or another control character (a password, ``sslpassword``
included, only no NUL); see ``shared_db.pgurl``.

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
from shared_db.pgurl import PgUrl, decoded, query_pairs, split_url
from shared_db.redact import SECRET_KEYWORDS, hide_secrets, redact_url
from shared_db.validation import DECIMAL_TEXT, MIN_SECONDS, small_int

LIBPQ_KEYWORDS = frozenset({
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword", "sslnegotiation",
    "application_name", "options", "target_session_attrs", "keepalives", "keepalives_idle",
    "keepalives_interval", "keepalives_count", "tcp_user_timeout", "gssencmode", "channel_binding",
    "krbsrvname", "passfile", "service", "host", "hostaddr", "port", "load_balance_hosts",
    "requiressl", "connect_timeout",
})
PRISMA_PARAMETERS = frozenset({"connection_limit", "pool_timeout", "pgbouncer", "schema"})
ACCEPTED_PARAMETERS = PRISMA_PARAMETERS | LIBPQ_KEYWORDS
REFUSED = {
    "user": "put the user before the host: postgresql://user@host:5432/db",
    "password": "put it after the user, percent-encoded: postgresql://user:secret@host:5432/db",
    "dbname": "put the database name in the path: postgresql://host:5432/db",
}
"""libpq keywords a URL may not set as parameters, and where they go instead: libpq would let the
parameter override the URL's own part, while shared-db reads, shows and derives other databases'
URLs from the URL's parts (a scratch database is the URL with another path)."""
SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
INT_MAX = 2**31 - 1
MAX_KEEPALIVE_SECONDS = 32767
"""Linux refuses a longer TCP keepalive idle time or interval (setsockopt fails at connect)."""
MAX_KEEPALIVE_PROBES = 127
"""Linux refuses more TCP keepalive probes."""
WHOLE_NUMBERS = {"connect_timeout": ("seconds", INT_MAX),
                 "keepalives_idle": ("seconds", MAX_KEEPALIVE_SECONDS),
                 "keepalives_interval": ("seconds", MAX_KEEPALIVE_SECONDS),
                 "keepalives_count": ("probes", MAX_KEEPALIVE_PROBES),
                 "tcp_user_timeout": ("milliseconds", INT_MAX)}
"""libpq keywords holding a count or a duration, with their unit and the most that libpq and the
system take: libpq reads each as a decimal integer, and 0 as no limit (or the system default)."""
CHOICES = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "sslnegotiation": ("postgres", "direct"),
    "gssencmode": ("disable", "prefer", "require"),
    "channel_binding": ("disable", "prefer", "require"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby",
                             "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
    "keepalives": ("0", "1"),
    "requiressl": ("0", "1"),
}
"""libpq keywords with a fixed set of values: a typo would otherwise surface only at connect."""
MAX_POOL_SIZE = 10_000
"""The most ``connection_limit`` takes: far more than a server serves (PostgreSQL's
``max_connections`` cannot exceed 262143, and is 100 by default)."""
MAX_POOL_TIMEOUT = 86_400.0
"""The longest ``pool_timeout``, one day, as for a transaction's timeouts."""
SCHEMA_NAME = re.compile(r"(?!pg_)[a-z_][a-z0-9_]{0,62}")
"""What ``schema`` takes: one name that means the same unquoted in ``search_path`` (where
PostgreSQL folds it to lower case) as quoted in SQL and in ``pg_dump --schema``; ``pg_`` names
are the system's."""
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


def _pool_size(raw: str) -> int:
    # Python's int() also takes "1_0", " 5" and non-ASCII digits: none of them is meant.
    if not (_DIGITS.fullmatch(raw) and small_int(raw, MAX_POOL_SIZE) > 0):
        raise ConfigError("connection_limit", f"must be a positive integer, got {_got(raw)}")
    if small_int(raw, MAX_POOL_SIZE) > MAX_POOL_SIZE:
        raise ConfigError("connection_limit", f"must be at most {MAX_POOL_SIZE} (PostgreSQL's "
                          f"max_connections is at most 262143), got {_got(raw)}")
    return small_int(raw, MAX_POOL_SIZE)


def _seconds(name: str, raw: str) -> float:
    value = float(raw) if DECIMAL_TEXT.fullmatch(raw) else math.nan
    if not (math.isfinite(value) and value >= MIN_SECONDS):
        raise ConfigError(name, f"must be a number of seconds of at least {MIN_SECONDS} "
                          f"(1 ms), got {_got(raw)}")
    if value > MAX_POOL_TIMEOUT:
        raise ConfigError(name, f"must be at most {MAX_POOL_TIMEOUT:g} seconds (one day), "
                          f"got {_got(raw)}")
    return value


def _whole_number(name: str, raw: str, unit: str, most: int) -> None:
    # Python's int() also takes "1_0", " 5" and non-ASCII digits; libpq takes none of them.
    if not (_DIGITS.fullmatch(raw) and 1 <= small_int(raw, most) <= most):
        why = ("libpq reads 0 as no limit or the system default" if most == INT_MAX else
               f"libpq reads 0 as the system default, and Linux refuses more than {most}")
        raise ConfigError(name, f"must be a whole number of {unit} from 1 to {most} ({why}), "
                          f"got {_got(raw)}")


def _ports(raw: str) -> None:
    # libpq's port keyword: one port, or one per host, comma-separated.
    for part in raw.split(","):
        if not (_DIGITS.fullmatch(part) and 1 <= small_int(part, 65535) <= 65535):
            raise ConfigError("port", "must be a port number from 1 to 65535 (or one per host, "
                              f"comma-separated), got {_got(raw)}")


def _schema(raw: str) -> str:
    if not SCHEMA_NAME.fullmatch(raw):
        raise ConfigError("schema", "must be one schema name: lower-case letters a-z, digits "
                          "and _, not starting with a digit or pg_, at most 63 characters (it "
                          f"becomes every connection's search_path), got {_got(raw)}")
    return raw


FLAG_WORDS = {"true": True, "1": True, "yes": True, "on": True,
              "false": False, "0": False, "no": False, "off": False}
"""The words an on/off setting or URL parameter takes, in any case (PostgreSQL's own)."""


def _flag(name: str, raw: str) -> bool:
    found = FLAG_WORDS.get(raw.lower())
    if found is None:
        raise ConfigError(name, f"must be true or false (or 1/0, yes/no, on/off), "
                          f"got {_got(raw)}")
    return found


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
    params = _parameters(raw, field_name)
    try:
        return _settings(url, params)
    except ConfigError as exc:
        # With four service URLs and their read URLs, "sslmode: ..." alone leaves the user
        # guessing which one: the rule says where.
        raise ConfigError(exc.field, f"{exc.rule} (in {field_name})") from None


def _settings(url: PgUrl, params: dict[str, str]) -> ConnectionSettings:
    pool_size = (_pool_size(params.pop("connection_limit"))
                 if "connection_limit" in params else default_pool_size())
    pool_timeout = (_seconds("pool_timeout", params.pop("pool_timeout"))
                    if "pool_timeout" in params else 10.0)
    for name, (unit, most) in WHOLE_NUMBERS.items():
        if name in params:
            _whole_number(name, params[name], unit, most)
    if "port" in params:
        _ports(params["port"])
    pgbouncer = _flag("pgbouncer", params.pop("pgbouncer")) if "pgbouncer" in params else False
    schema = _schema(params.pop("schema")) if "schema" in params else None
    for name, allowed in CHOICES.items():
        if name in params and params[name] not in allowed:
            raise ConfigError(name, f"must be one of {', '.join(allowed)}, "
                              f"got {_got(params[name])}")
    return ConnectionSettings(url.set(query=params), pool_size, pool_timeout, pgbouncer, schema,
                              params)


def _parameters(raw: str, field_name: str) -> dict[str, str]:
    """The query of ``raw``, decoded: every key an accepted parameter, given once, with a value.

    Raises:
        ConfigError: a key is not a name, not accepted or repeated; an item has no ``=``; a
            value holds a NUL byte or (but for a secret) another control character.
    """
    accepted = ", ".join([*sorted(PRISMA_PARAMETERS), "sslmode", "and libpq keywords"])
    params: dict[str, str] = {}
    for key, value in query_pairs(raw):
        if not _NAME.fullmatch(key):
            raise ConfigError(field_name, "has a query parameter that is not a name (percent-"
                              "encode any '?', '&' or '=' in the user or password); accepted: "
                              f"{accepted}")
        where = f"{field_name} parameter {key!r}"
        if key in REFUSED:
            raise ConfigError(where, f"is not accepted as a parameter: {REFUSED[key]} (shared-db "
                              "reads, shows and derives URLs from the URL's own parts, which "
                              "the parameter would override for libpq alone)")
        if key not in ACCEPTED_PARAMETERS:
            raise ConfigError(where, f"is not accepted; accepted: {accepted}")
        if key in params:
            raise ConfigError(where, "is given more than once: give it once, so that "
                              "which value is meant is never a guess")
        if value is None:
            raise ConfigError(where, f"has no value: write {key}=value")
        params[key] = decoded(value, where, secret=key in SECRET_KEYWORDS)
    return params
