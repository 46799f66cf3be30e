"""A ``postgresql://`` URL as libpq reads it: one or several ``host:port``, user, password,
database and query, split and put back together without changing what libpq will see.

Parse errors never quote the URL: an unencoded character in a password moves the boundaries
between the parts, so any piece of the text could be a piece of the password.

Every part is percent-decoded as libpq decodes it, and refused (naming the part, never showing
it) when libpq or PostgreSQL could not take it as written: a NUL byte (``%00``) anywhere, which
libpq refuses only when it connects; another control character (``%01``-``%1F``, ``%7F``,
U+0080-U+009F) anywhere but in a password; percent-encoded bytes that are not UTF-8, which
would reach the driver changed. An empty user (``postgresql://@host/db``) is refused too: libpq
would silently connect as the operating-system user. So is a user or database name longer than
PostgreSQL's 63 bytes, which the server would silently cut short.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote, urlencode, urlsplit

from shared_db.errors import ConfigError
from shared_db.redact import redact_url

HIDDEN_PASSWORD = "***"
_HOST = re.compile(r"[A-Za-z0-9._%~\-]*")
_PORT = re.compile(r"[0-9]{1,5}")
MAX_NAME_BYTES = 63
"""PostgreSQL's longest user and database name (NAMEDATALEN - 1): it cuts longer ones short."""


@dataclass(frozen=True)
class PgUrl:
    """The parts of a libpq URL; ``hosts`` holds every ``(host, port)`` in the given order."""

    hosts: tuple[tuple[str, int | None], ...] = ()
    username: str | None = None
    password: str | None = None
    database: str | None = None
    query: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str | None:
        """The first host (libpq tries them in order unless ``load_balance_hosts=random``)."""
        return self.hosts[0][0] or None if self.hosts else None

    @property
    def port(self) -> int | None:
        return self.hosts[0][1] if self.hosts else None

    def __repr__(self) -> str:
        # The fields stay real (connections need them); only what is shown hides the
        # password and the secret query parameters (sslpassword).
        return f"PgUrl({redact_url(self.render(hide_password=True))!r})"

    __str__ = __repr__

    def set(self, **changes: object) -> PgUrl:
        return replace(self, **changes)  # type: ignore[arg-type]

    def render(self, *, hide_password: bool) -> str:
        """The URL as text; ``hide_password`` puts ``***`` in the password's place."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                shown = HIDDEN_PASSWORD if hide_password else quote(self.password, safe="")
                auth += f":{shown}"
            auth += "@"
        hosts = ",".join(_host_text(host, port) for host, port in self.hosts)
        path = f"/{quote(self.database, safe='')}" if self.database is not None else ""
        # quote, not quote_plus: libpq reads "+" as itself, never as a space.
        query = f"?{urlencode(self.query, quote_via=quote)}" if self.query else ""
        return f"postgresql://{auth}{hosts}{path}{query}"


def _host_text(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else quote(host, safe="%")
    return f"{shown}:{port}" if port is not None else shown


_ENCODE = ("percent-encode any '/', '?', '#' or '@' in the user, password or database name "
           "(e.g. %40 for @)")
_IPV6 = "the host in [ ] must be an IPv6 address with both brackets, e.g. postgresql://[::1]:5432/app"
_BAD_PORT = ("the port must be a number from 1 to 65535 (percent-encode any '/', '?', '#' or '@' "
             "in the user or password, e.g. %40 for @)")


def query_pairs(raw: str) -> list[tuple[str, str | None]]:
    """The query of URL ``raw`` as written: each key percent-decoded as libpq decodes it ("+"
    stays "+"), each value still encoded (None for an item with no ``=``), in order and with
    repeats (libpq would keep a repeated key's last value)."""
    query = urlsplit(raw).query
    pairs = (item.partition("=") for item in query.split("&") if item)
    return [(unquote(key), value if equals else None) for key, equals, value in pairs]


CONTROL_RULE = ("must not contain a control character (such as %00, %0A or %7F): libpq and "
                "PostgreSQL cannot take a NUL byte, and the others never belong in it")
NUL_RULE = "must not contain a NUL byte (%00): libpq cannot pass one to the server"
UTF8_RULE = ("must percent-encode UTF-8 (e.g. %C3%A9 for \u00e9): other bytes would reach the "
             "driver changed")


def decoded(text: str, field_name: str, *, secret: bool = False) -> str:
    """``text`` percent-decoded as libpq decodes it ("+" stays "+").

    Raises:
        ConfigError: ``field_name`` (never the text: it may be a secret, or hold part of one)
            percent-encodes bytes that are not UTF-8, or holds a NUL byte or, unless ``secret``
            (a password may hold any other character), another control character.
    """
    try:
        value = unquote(text, errors="strict")
        # A lone surrogate: os.environ's spelling of bytes that are not UTF-8.
        value.encode()
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise ConfigError(field_name, UTF8_RULE) from None
    if secret and "\x00" in value:
        raise ConfigError(field_name, NUL_RULE)
    if not secret and any(unicodedata.category(c) == "Cc" for c in value):
        raise ConfigError(field_name, CONTROL_RULE)
    return value


def _name(text: str, field_name: str) -> str:
    value = decoded(text, field_name)
    if len(value.encode()) > MAX_NAME_BYTES:
        raise ConfigError(field_name, f"must be at most {MAX_NAME_BYTES} bytes long: PostgreSQL "
                          "would silently cut it short")
    return value


def _invalid(field_name: str, rule: str) -> ConfigError:
    return ConfigError(field_name, f"is not a valid URL: {rule}")


def split_url(raw: str, field_name: str) -> PgUrl:
    """``raw`` (its scheme already checked) split into its parts.

    Raises:
        ConfigError: a part is malformed, or a character that must be percent-encoded is not.
    """
    try:
        parts = urlsplit(raw)
    except ValueError:  # unbalanced brackets, or something in them that is no address
        raise _invalid(field_name, _IPV6) from None
    if parts.fragment or "#" in raw or any(c in parts.path[1:] for c in "/@"):
        raise _invalid(field_name, _ENCODE)
    userinfo, at, hostspec = parts.netloc.rpartition("@")
    if "@" in userinfo:
        raise _invalid(field_name, _ENCODE)
    user, colon, password = userinfo.partition(":")
    hosts = tuple(_host(item, field_name) for item in hostspec.split(",")) if hostspec else ()
    if len(hosts) > 1 and any(not host for host, _ in hosts):
        raise _invalid(field_name, "every host of a multi-host URL needs a name, e.g. "
                       "postgresql://h1:5432,h2:5432/app")
    if at and not user:
        raise ConfigError(f"{field_name} user", "is empty: name it before the '@' "
                          "(postgresql://app@host/db), or leave out the '@' and the password "
                          "for libpq's default user")
    return PgUrl(
        hosts=hosts,
        username=_name(user, f"{field_name} user") if at else None,
        password=(decoded(password, f"{field_name} password", secret=True)
                  if at and colon else None),
        database=_name(parts.path[1:], f"{field_name} database name") if parts.path else None,
    )


def _host(item: str, field_name: str) -> tuple[str, int | None]:
    if item.startswith("[") or "]" in item or item.count(":") > 1:
        inside, close, rest = item[1:].partition("]")
        if not item.startswith("[") or not close or (rest and not rest.startswith(":")):
            raise _invalid(field_name, _IPV6)
        try:
            ipaddress.IPv6Address(inside.partition("%")[0])
        except ValueError:
            raise _invalid(field_name, _IPV6) from None
        decoded(inside, f"{field_name} host")  # the zone after '%' reaches libpq as written
        return inside, _port(rest[1:], field_name) if rest else None
    host, colon, port = item.partition(":")
    if not _HOST.fullmatch(host):
        raise _invalid(field_name, _ENCODE)
    return decoded(host, f"{field_name} host"), _port(port, field_name) if colon else None


def _port(raw: str, field_name: str) -> int:
    # Port 0 is no port libpq can connect to ("invalid port number").
    if not (_PORT.fullmatch(raw) and 1 <= int(raw) <= 65535):
        raise _invalid(field_name, _BAD_PORT)
    return int(raw)
