"""DATABASE_URL parsing: the guide's Prisma-style parameters, and clear errors for the rest."""

from __future__ import annotations

import os
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from shared_db.config import Settings, load_settings
from shared_db.errors import ConfigError, DatabaseUnavailableError, FieldRuleError
from shared_db.ops.targets import Target
from shared_db.redact import redact, redact_url
from shared_db.url import parse_database_url

SECRET = "Zq9-hunter2"


def test_guide_parameters_map_onto_pool_and_libpq() -> None:
    conn = parse_database_url("postgresql://user:secret@db.local:5432/app?connection_limit=10"
                              "&pool_timeout=20&connect_timeout=60&sslmode=require"
                              "&pgbouncer=true&schema=tenant")
    assert (conn.pool_size, conn.pool_timeout, conn.pgbouncer, conn.schema) == (
        10, 20.0, True, "tenant")
    assert conn.libpq == {"connect_timeout": "60", "sslmode": "require"}
    assert conn.url.query == {"connect_timeout": "60", "sslmode": "require"}
    assert conn.libpq_url() == ("postgresql://user:secret@db.local:5432/app"
                                "?connect_timeout=60&sslmode=require")
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
    ("postgresql://localhost/app?connection_limit=1_0", "connection_limit", "positive int"),
    ("postgresql://localhost/app?connection_limit=10001", "connection_limit", "at most 10000"),
    ("postgresql://localhost/app?pool_timeout=86401", "pool_timeout", "at most 86400 seconds"),
    ("postgresql://localhost/app?pool_timeout=1_0", "pool_timeout", "seconds of at least"),
    ("postgresql://localhost/app?sslmode=bogus", "sslmode", "must be one of disable, allow"),
    ("postgresql://localhost/app?schema=a%20b", "schema", "must be one schema name"),
    ("postgresql://localhost/app?schema=a&schema=b", "DATABASE_URL parameter 'schema'",
     "given more than once"),
    ("postgresql://localhost/app?password=x", "DATABASE_URL parameter 'password'",
     "not accepted as a parameter"),
    ("postgresql://u:pa%00ss@localhost/app", "DATABASE_URL password", "NUL byte"),
    ("postgresql://localhost/app?pool_timeout=soon", "pool_timeout", "seconds of at least"),
    ("postgresql://localhost/app?connect_timeout=0", "connect_timeout", "whole number of seconds"),
    ("postgresql://localhost/app?pgbouncer=maybe", "pgbouncer", "true or false"),
    ("postgresql://localhost/app?poolsize=3", "DATABASE_URL parameter 'poolsize'",
     "accepted: connection_limit"),
    ("postgresql://localhost:99999/app", "DATABASE_URL", "not a valid URL"),
    ("postgresql://u:pw@[::1/db", "DATABASE_URL", "IPv6 address with both brackets"),
    ("postgresql://u:pw@[zz]/db", "DATABASE_URL", "IPv6 address"),
    ("postgresql://u:pw@host:abc/db", "DATABASE_URL", "port must be a number"),
    ("postgresql://u:pw@host:0/db", "DATABASE_URL", "port must be a number from 1 to 65535"),
    ("postgresql://u:p@w@host/db", "DATABASE_URL", "percent-encode"),
    ("postgresql://u:p/w@host/db", "DATABASE_URL", "percent-encode"),
    ("postgresql://host/db#x", "DATABASE_URL", "percent-encode"),
    ("u:pw@host/db", "DATABASE_URL", "must start with postgresql://"),
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


def _shown(obj: object) -> str:
    return repr(obj) + str(obj)


def test_connection_settings_hide_passwords_but_connect_with_them() -> None:
    conn = parse_database_url(f"postgresql://app:{SECRET}@db.local/app?sslmode=verify-full"
                              f"&sslpassword={SECRET}2&application_name=api")
    for shown in (_shown(conn), conn.safe_url(), _shown(Target("shared", conn, ("auth",))),
                  _shown(conn.url)):
        assert SECRET not in shown and "app:***@db.local" in shown
        assert "sslpassword=***" in shown or "'sslpassword': '***'" in shown
    assert "application_name=api" in conn.safe_url()
    assert conn.libpq["sslpassword"] == f"{SECRET}2"
    assert f"app:{SECRET}@db.local" in conn.libpq_url()
    assert f"sslpassword={SECRET}2" in conn.libpq_url()
    assert SECRET not in _shown(conn.with_database("other"))


def test_settings_hide_every_url_password_but_keep_the_values() -> None:
    env = {"DATABASE_URL": f"postgresql://app:{SECRET}@primary/app?sslpassword={SECRET}",
           "DATABASE_READ_URL": f"postgresql://ro:{SECRET}@replica/app",
           "AUTH_DATABASE_URL": f"postgresql://auth:{SECRET}@auth-db/auth"}
    settings = load_settings(env)
    assert SECRET not in _shown(settings)
    assert "app:***@primary" in repr(settings) and "ro:***@replica" in repr(settings)
    assert "auth:***@auth-db" in repr(settings) and "sslpassword=***" in repr(settings)
    assert settings.database_url == env["DATABASE_URL"]
    assert settings.read_urls["payments"] == env["DATABASE_READ_URL"]
    assert settings.connection().url.password == SECRET
    # Built directly, unvalidated: still hidden, even with characters that should be encoded.
    odd = Settings(database_url=f"postgresql://u:{SECRET}@x/y?z@host/db",
                   service_urls={"auth": f"postgres://u:{SECRET}?x@h/db"})
    assert SECRET not in _shown(odd)


@pytest.mark.parametrize("make", [
    lambda text: ConfigError("DATABASE_URL", text),
    lambda text: DatabaseUnavailableError(f"cannot connect: {text}"),
    lambda text: FieldRuleError("options", text),
])
def test_errors_hide_passwords_in_str_repr_and_args(make) -> None:
    for text in (f"postgresql://u:{SECRET}@h/db", f"host=h password={SECRET} dbname=x",
                 f"host=h password='{SECRET} x' dbname=x", f"?sslpassword={SECRET}&a=b",
                 f"PGPASSWORD={SECRET}", f"{{'password': '{SECRET}'}}"):
        error = make(text)
        assert SECRET not in _shown(error) + repr(error.args)
        assert "***" in str(error)


def test_redaction_keeps_what_is_not_a_password() -> None:
    assert redact_url("postgresql://u@h:5432/db?application_name=a@b") == (
        "postgresql://u@h:5432/db?application_name=a@b")
    assert redact_url("postgresql://u:p@h/db?sslmode=require&SSLPASSWORD=x") == (
        "postgresql://u:***@h/db?sslmode=require&SSLPASSWORD=***")
    assert redact("password: must be 8 to 72 bytes long, got 5") == (
        "password: must be 8 to 72 bytes long, got 5")


# Characters a password may hold, the ones that must be percent-encoded in a URL included;
# none of the other parts below contain "Z", so any "Z" in a message comes from the password.
_PASSWORD = st.text(st.sampled_from("Zq9x-_.~!$&'()*+,;=:@/?#[]% "), min_size=1, max_size=12)
_PART = st.text(st.sampled_from("abc019.-_:@/?#[]%&= "), max_size=10)


@given(scheme=st.sampled_from(["postgresql", "postgres", "postgresql+psycopg"]),
       user=_PART, password=_PASSWORD, host=_PART, port=_PART, path=_PART, query=_PART,
       sslpassword=st.booleans())
@example(scheme="postgresql", user="u", password="pw", host="[::1", port="", path="db",
         query="", sslpassword=False)
def test_malformed_urls_are_config_errors_that_never_show_the_password(
        scheme: str, user: str, password: str, host: str, port: str, path: str, query: str,
        sslpassword: bool) -> None:
    secret = "Z" + password
    query = f"{query}&sslpassword={secret}" if sslpassword else query
    raw = f"{scheme}://{user}:{secret}@{host}{':' if port else ''}{port}/{path}?{query}"
    try:
        conn = parse_database_url(raw)
    except ConfigError as error:
        assert error.field and error.rule
        assert "\n" not in str(error)
        assert "Z" not in _shown(error) + repr(error.args) + error.field + error.rule
    else:
        assert "Z" not in _shown(conn) + conn.safe_url()
        assert conn.url.password == secret


def test_multi_host_urls_reach_libpq_as_written() -> None:
    raw = (f"postgresql://app:{SECRET}@db1.local:5432,db2.local:5433,[::1]:5434/app"
           "?target_session_attrs=read-write&load_balance_hosts=random&connection_limit=4")
    conn = parse_database_url(raw)
    assert conn.url.hosts == (("db1.local", 5432), ("db2.local", 5433), ("::1", 5434))
    assert (conn.url.host, conn.url.port, conn.pool_size) == ("db1.local", 5432, 4)
    parsed = conninfo_to_dict(conn.libpq_url())
    assert (parsed["host"], parsed["port"]) == ("db1.local,db2.local,::1", "5432,5433,5434")
    assert parsed["target_session_attrs"] == "read-write"
    assert parsed["load_balance_hosts"] == "random" and parsed["password"] == SECRET
    assert SECRET not in _shown(conn) and "db1.local:5432,db2.local:5433" in conn.safe_url()


@pytest.mark.parametrize(("url", "field", "rule"), [
    ("postgresql://h1,,h2/app", "DATABASE_URL", "every host of a multi-host URL needs a name"),
    ("postgresql://h1:5432,h2:x/app", "DATABASE_URL", "port must be a number"),
    ("postgresql://h1,h2/app?target_session_attrs=master", "target_session_attrs",
     "must be one of any, read-write, read-only, primary, standby, prefer-standby"),
    ("postgresql://h1,h2/app?load_balance_hosts=yes", "load_balance_hosts",
     "must be one of disable, random"),
])
def test_bad_multi_host_urls_name_the_rule(url: str, field: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_database_url(url)
    assert caught.value.field == field and rule in caught.value.rule


_LIBPQ_PARTS = ("host", "port", "user", "password", "dbname", "sslmode", "application_name")


@given(user=st.text(st.sampled_from("ab_Z9%@:/?é"), min_size=1, max_size=6),
       password=st.text(st.sampled_from("pq!$&'()*+,;=:@/?#[]% é\t\n\x01\x7f"), max_size=8),
       hosts=st.lists(st.sampled_from(["db.local", "10.0.0.7", "[::1]", "h-2"]), min_size=1,
                      max_size=3),
       ports=st.lists(st.integers(1, 65535), min_size=3, max_size=3),
       database=st.text(st.sampled_from("app_é%2 "), min_size=1, max_size=6))
def test_libpq_reads_the_rendered_url_as_it_reads_the_original(
        user: str, password: str, hosts: list[str], ports: list[int], database: str) -> None:
    def enc(text: str) -> str:
        return quote(text, safe="")
    netloc = ",".join(f"{h}:{p}" for h, p in zip(hosts, ports, strict=False))
    raw = (f"postgresql://{enc(user)}:{enc(password)}@{netloc}/{enc(database)}"
           "?sslmode=disable&application_name=a%20b+c&connection_limit=3")
    conn = parse_database_url(raw)
    original = conninfo_to_dict(raw.replace("&connection_limit=3", ""))
    rendered = conninfo_to_dict(conn.libpq_url())
    assert {k: original.get(k) for k in _LIBPQ_PARTS} == {
        k: rendered.get(k) for k in _LIBPQ_PARTS}


@pytest.mark.parametrize("query", ["sslmode=bogus", "pool_timeout=0", "connection_limit=x",
                                   "keepalives=7", "port=0", "schema=Bad"])
def test_a_bad_parameter_value_says_which_url_holds_it(query: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_database_url(f"postgresql://u@h/d?{query}", field_name="PROFILE_DATABASE_URL")
    assert caught.value.field == query.partition("=")[0]
    assert str(caught.value).endswith("(in PROFILE_DATABASE_URL)")
