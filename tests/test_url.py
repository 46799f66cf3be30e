"""DATABASE_URL parsing: the guide's Prisma-style parameters, and clear errors for the rest."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared_db.config import load_settings
from shared_db.errors import ConfigError
from shared_db.url import parse_database_url


def test_guide_parameters_map_onto_pool_and_libpq() -> None:
    conn = parse_database_url("postgresql://user:secret@db.local:5432/app?connection_limit=10"
                              "&pool_timeout=20&connect_timeout=60&sslmode=require"
                              "&pgbouncer=true&schema=tenant")
    assert (conn.pool_size, conn.pool_timeout, conn.pgbouncer, conn.schema) == (
        10, 20.0, True, "tenant")
    assert conn.libpq == {"connect_timeout": "60", "sslmode": "require"}
    assert conn.url.drivername == "postgresql+psycopg"
    assert dict(conn.url.query) == {"connect_timeout": "60", "sslmode": "require"}
    assert "secret" not in conn.safe_url() and "***" in conn.safe_url()
    assert "secret" in conn.libpq_url()


def test_default_pool_is_cores_times_two_plus_one() -> None:
    conn = parse_database_url("postgresql://localhost/app")
    assert conn.pool_size == (os.cpu_count() or 1) * 2 + 1
    assert conn.pool_timeout == 10.0


@pytest.mark.parametrize(("url", "field", "rule"), [
    ("mysql://localhost/app", "DATABASE_URL", "must start with postgresql://"),
    ("postgresql://localhost", "DATABASE_URL", "must name a database"),
    ("postgresql://localhost/app?connection_limit=-1", "connection_limit", "positive int"),
    ("postgresql://localhost/app?pool_timeout=soon", "pool_timeout", "positive float"),
    ("postgresql://localhost/app?connect_timeout=0", "connect_timeout", "positive int"),
    ("postgresql://localhost/app?pgbouncer=maybe", "pgbouncer", "true or false"),
    ("postgresql://localhost/app?poolsize=3", "DATABASE_URL parameter 'poolsize'",
     "accepted: connection_limit"),
    ("postgresql://localhost:99999/app", "DATABASE_URL", "not a valid URL"),
])
def test_bad_urls_name_the_field_and_rule(url: str, field: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_database_url(url)
    assert caught.value.field == field and rule in caught.value.rule


@given(st.text(max_size=80))
def test_any_text_is_either_accepted_or_a_config_error(raw: str) -> None:
    try:
        parse_database_url(raw)
    except ConfigError as error:
        assert error.field and error.rule


def test_settings_validate_topology_and_service_urls() -> None:
    with pytest.raises(ConfigError, match="SHARED_DB_TOPOLOGY: must be shared or per-service"):
        load_settings({"SHARED_DB_TOPOLOGY": "sharded"})
    with pytest.raises(ConfigError, match="AUTH_DATABASE_URL: is required"):
        load_settings({"SHARED_DB_TOPOLOGY": "per-service"})
    with pytest.raises(ConfigError, match="PAYMENTS_DATABASE_URL: must start"):
        load_settings({"PAYMENTS_DATABASE_URL": "sqlite:///x"})
    assert load_settings({}).database_url is None
