"""Settings: the only module that reads the environment.

Variables:

* ``DATABASE_URL``: the shared database. Unset: an embedded PostgreSQL is started (once, then
  reused) with its data in ``SHARED_DB_HOME`` (default ``./.shared-db``).
* ``SHARED_DB_TOPOLOGY``: ``shared`` (default) or ``per-service``.
* ``AUTH_DATABASE_URL``, ``PAYMENTS_DATABASE_URL``, ``ADMIN_DATABASE_URL``,
  ``PROFILE_DATABASE_URL``: each service's own database in the per-service topology.
* ``DATABASE_READ_URL`` (shared) or ``<SERVICE>_READ_URL`` (per service, e.g.
  ``PAYMENTS_READ_URL``): optional read replicas. Reads called on the ``Database`` go there;
  writes, and every read inside a transaction, go to the primary.
* ``SHARED_DB_MIGRATIONS_DIR``: where migration chains live (default: inside the package): an
  existing directory with the package's ``env.py``. Checked when a command reads it
  (``Settings.migrations_dir``), so that a service or a command that runs no migration is not
  refused for it.
* ``SHARED_DB_ENV``: ``development`` (default) or ``production``; selects query log levels.
* ``SHARED_DB_SLOW_QUERY_MS``: the slow-query threshold (default 1000, the guide's; 1 to
  86400000, one day).
* ``SHARED_DB_LOG_PARAMS``: ``true`` to show query parameters in logs and events (default off).
* ``SHARED_DB_LOG_FORMAT``: ``text`` (default) or ``json``: one JSON object per logged event.
* ``SHARED_DB_TRACING``: ``true`` for OpenTelemetry spans (the ``otel`` extra); default off.
* ``SHARED_DB_METRICS``: ``true`` for Prometheus metrics on ``Database.metrics``; default off.
* ``SHARED_DB_TRACE_CONTEXT``: ``true`` to end each statement with the W3C trace context
  (sqlcommenter); such statements are not server-prepared. Default off.
* ``SHARED_DB_N_PLUS_ONE``: how often one statement may run in a unit of work before it is
  reported as N+1 (default 10; a whole number from 1 to 1000000);
  ``SHARED_DB_N_PLUS_ONE_STRICT=true`` raises instead (tests).
* ``SHARED_DB_CACHE_DIR``: where ``migrate status`` remembers that a schema had no drift
  (default ``$XDG_CACHE_HOME/shared-db``, else ``~/.cache/shared-db``).
* ``SHARED_DB_LOCK_TIMEOUT``: seconds a migration step may wait for a table lock before it gives
  up and tries again (default 5; 0.001 to 86400); ``SHARED_DB_LOCK_RETRIES``: how often it tries
  again (default 5; 0 to 1000).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from shared_db.errors import ConfigError
from shared_db.migrations_folder import PACKAGE_MIGRATIONS as PACKAGE_MIGRATIONS
from shared_db.migrations_folder import MigrationsDir
from shared_db.redact import redact_url
from shared_db.services import SERVICES
from shared_db.url import FLAG_WORDS, ConnectionSettings, parse_database_url
from shared_db.validation import DECIMAL_TEXT, shown, small_int

Topology = Literal["shared", "per-service"]
MAX_SLOW_QUERY_MS = 86_400_000.0
"""The longest slow-query threshold: one day."""
MAX_N_PLUS_ONE = 1_000_000
MAX_LOCK_TIMEOUT = 86_400.0
"""The longest lock wait of a migration step, one day (PostgreSQL's ``lock_timeout`` stops at
about 24.8 days)."""
MAX_LOCK_RETRIES = 1000


LEVELS = {"development": frozenset({"query", "warn", "error"}),
          "production": frozenset({"error"})}


@dataclass(frozen=True)
class QueryLogSettings:
    """The query log's settings: what it logs (by environment), the slow-query threshold,
    whether values are shown, and the N+1 threshold (raising when ``strict``)."""

    levels: frozenset[str] = LEVELS["development"]
    slow_ms: float = 1000.0
    log_params: bool = False
    n_plus_one: int = 10
    strict: bool = False
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def for_environment(cls, environment: str, **overrides: object) -> QueryLogSettings:
        levels = LEVELS.get(environment, LEVELS["production"])
        return cls(levels=levels, **overrides)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TelemetrySettings:
    """What a ``Database`` reports beyond its query log (all off by default)."""

    tracing: bool = False
    metrics: bool = False
    trace_context: bool = False
    """Append the W3C trace context to each statement (sqlcommenter)."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    topology: Topology = "shared"
    service_urls: Mapping[str, str] = field(default_factory=dict)
    read_urls: Mapping[str, str] = field(default_factory=dict)
    """Service -> replica URL for reads outside transactions (all four share one when shared)."""
    home: Path = Path(".shared-db")
    migrations_dir: MigrationsDir = MigrationsDir()  # noqa: RUF009 (a descriptor, read per use)
    """Read as a ``Path``, checked on each read (``migrations_folder``)."""
    log: QueryLogSettings = field(default_factory=QueryLogSettings)
    lock_timeout: float = 5.0
    """Seconds a migration step waits for a lock (``lock_timeout``) before backing off."""
    lock_retries: int = 5
    """How often ``deploy`` tries a step again after its lock wait timed out."""
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    cache_dir: Path | None = None
    """Where commands remember what they may skip next time (``migrate status``'s clean drift
    checks); None: nothing is remembered."""

    def __repr__(self) -> str:
        # The URLs stay as given (connections need them); only what is shown hides passwords.
        # The migrations folder as given: showing settings never checks it.
        shown = {f.name: self.__dict__["_migrations_dir"] if f.name == "migrations_dir" else
                 getattr(self, f.name) for f in fields(self)}
        shown["database_url"] = None if self.database_url is None else redact_url(
            self.database_url)
        shown["service_urls"] = {s: redact_url(u) for s, u in self.service_urls.items()}
        shown["read_urls"] = {s: redact_url(u) for s, u in self.read_urls.items()}
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    __str__ = __repr__

    def query_log(self) -> QueryLogSettings:
        """Query-log settings for this environment."""
        return self.log

    def connection(self, url: str | None = None, field_name: str = "DATABASE_URL",
                   ) -> ConnectionSettings:
        """Parsed settings for ``url`` (default: ``database_url``)."""
        raw = url if url is not None else self.database_url
        if raw is None:
            raise ConfigError(field_name, "is not set")
        return parse_database_url(raw, field_name=field_name)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default ``os.environ``), validating what can be checked early.

    Raises:
        ConfigError: a variable holds a value that can never work, or is not a string.
    """
    env = os.environ if env is None else _strings(env)
    topology = env.get("SHARED_DB_TOPOLOGY", "shared") or "shared"
    if topology not in ("shared", "per-service"):
        raise ConfigError("SHARED_DB_TOPOLOGY", f"must be shared or per-service, got {topology!r}")
    database_url = env.get("DATABASE_URL") or None
    if database_url is not None:
        parse_database_url(database_url)
    service_urls = {
        service: env[f"{service.upper()}_DATABASE_URL"]
        for service in SERVICES
        if env.get(f"{service.upper()}_DATABASE_URL")
    }
    for service, url in service_urls.items():
        parse_database_url(url, field_name=f"{service.upper()}_DATABASE_URL")
    if topology == "per-service":
        missing = [s for s in SERVICES if s not in service_urls]
        if missing:
            raise ConfigError(f"{missing[0].upper()}_DATABASE_URL",
                              "is required when SHARED_DB_TOPOLOGY=per-service")
    return Settings(
        database_url=database_url,
        topology=topology,  # type: ignore[arg-type]
        service_urls=service_urls,
        read_urls=_read_urls(env, topology),
        home=Path(env.get("SHARED_DB_HOME") or ".shared-db"),
        migrations_dir=Path(env.get("SHARED_DB_MIGRATIONS_DIR") or PACKAGE_MIGRATIONS),
        log=QueryLogSettings.for_environment(
            _choice(env, "SHARED_DB_ENV", ("development", "production")),
            slow_ms=_number(env, "SHARED_DB_SLOW_QUERY_MS", 1000.0, minimum=1.0,
                            maximum=MAX_SLOW_QUERY_MS, unit="ms (one day)"),
            log_params=_flag(env, "SHARED_DB_LOG_PARAMS"),
            n_plus_one=_whole(env, "SHARED_DB_N_PLUS_ONE", 10, minimum=1, maximum=MAX_N_PLUS_ONE),
            strict=_flag(env, "SHARED_DB_N_PLUS_ONE_STRICT"),
            log_format=_choice(env, "SHARED_DB_LOG_FORMAT", ("text", "json"))),
        telemetry=TelemetrySettings(tracing=_flag(env, "SHARED_DB_TRACING"),
                                    metrics=_flag(env, "SHARED_DB_METRICS"),
                                    trace_context=_flag(env, "SHARED_DB_TRACE_CONTEXT")),
        lock_timeout=_number(env, "SHARED_DB_LOCK_TIMEOUT", 5.0, minimum=0.001,
                             maximum=MAX_LOCK_TIMEOUT, unit="seconds (one day)"),
        lock_retries=_whole(env, "SHARED_DB_LOCK_RETRIES", 5, maximum=MAX_LOCK_RETRIES),
        cache_dir=_cache_dir(env),
    )


def _cache_dir(env: Mapping[str, str]) -> Path | None:
    if env.get("SHARED_DB_CACHE_DIR"):
        return Path(env["SHARED_DB_CACHE_DIR"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "shared-db"
    return Path(env["HOME"]) / ".cache" / "shared-db" if env.get("HOME") else None


def _read_urls(env: Mapping[str, str], topology: str) -> dict[str, str]:
    if topology == "shared":
        if env.get("DATABASE_READ_URL"):
            parse_database_url(env["DATABASE_READ_URL"], field_name="DATABASE_READ_URL")
            return dict.fromkeys(SERVICES, env["DATABASE_READ_URL"])
        return {}
    found = {}
    for service in SERVICES:
        name = f"{service.upper()}_READ_URL"
        if env.get(name):
            parse_database_url(env[name], field_name=name)
            found[service] = env[name]
    return found


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    # Surrounding blanks are forgiven, as they are for numbers: a .env file's trailing space
    value = (env.get(name) or "").strip() or allowed[0]
    if value not in allowed:
        raise ConfigError(name, f"must be one of {', '.join(allowed)}, got "
                          f"{shown(env.get(name))}")
    return value


def _strings(env: object) -> Mapping[str, str]:
    """``env`` as the environment it stands for: names and values are strings."""
    if not isinstance(env, Mapping):
        raise ConfigError("env", "must be a mapping of variable names to strings (like "
                          f"os.environ), got {type(env).__name__}")
    for name, value in env.items():
        if not isinstance(name, str):
            raise ConfigError("env", f"variable names must be strings, got {shown(name)}")
        if not isinstance(value, str):
            raise ConfigError(name, f"must be a string, as in the environment, got "
                              f"{type(value).__name__}")
    return env


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float,
            maximum: float, unit: str) -> float:
    """A finite decimal number from ``minimum`` to ``maximum``."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    # float() also takes "1_0", "inf" and non-ASCII digits: none of them is meant.
    value = float(raw) if DECIMAL_TEXT.fullmatch(raw) else math.nan
    if not (math.isfinite(value) and value >= minimum):
        raise ConfigError(name, f"must be a number of at least {minimum:g}, got {shown(raw)}")
    if value > maximum:
        raise ConfigError(name, f"must be at most {maximum:.15g} {unit}, got {shown(raw)}")
    return value


def _whole(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0,
           maximum: int) -> int:
    """A whole number from ``minimum`` (0 unless given) to ``maximum``."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(name, f"must be a whole number from {minimum}, got {shown(raw)}")
    value = small_int(raw, maximum)
    if value < minimum:
        raise ConfigError(name, f"must be a whole number from {minimum}, got {shown(raw)}")
    if value > maximum:
        raise ConfigError(name, f"must be at most {maximum}, got {shown(raw)}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower() or "false"
    if raw not in FLAG_WORDS:
        raise ConfigError(name, f"must be true or false (or 1/0, yes/no, on/off), "
                          f"got {shown(env.get(name))}")
    return FLAG_WORDS[raw]
