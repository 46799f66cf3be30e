"""Hostile settings: every URL part and parameter, and every number and folder the environment
gives, is a ``ConfigError`` naming it and its rule (exit 2 on the command line), never a raw
driver error at connect, never a traceback, and never shows a password."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from shared_db.cli import main
from shared_db.config import (
    MAX_LOCK_RETRIES,
    MAX_LOCK_TIMEOUT,
    MAX_N_PLUS_ONE,
    MAX_SLOW_QUERY_MS,
    PACKAGE_MIGRATIONS,
    Settings,
    load_settings,
)
from shared_db.connect import connect_args
from shared_db.errors import ConfigError
from shared_db.url import (
    CHOICES,
    INT_MAX,
    MAX_POOL_SIZE,
    MAX_POOL_TIMEOUT,
    REFUSED,
    SCHEMA_NAME,
    WHOLE_NUMBERS,
    ConnectionSettings,
    parse_database_url,
)

SECRET = "Zq9-hunter2"
BASE = f"postgresql://app:{SECRET}@db.local:5432/app"
CONTROLS = ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x7f", "\x85"]


def _refused(raw: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_database_url(raw)
    error = caught.value
    shown = str(error) + repr(error) + repr(error.args) + error.field + error.rule
    assert SECRET not in shown and "\n" not in str(error)
    return error


def _enc(text: str) -> str:
    return quote(text, safe="")


# -- NUL and other control characters, in every part ---------------------------------------------

def _with(part: str, text: str) -> tuple[str, str]:
    """A URL carrying ``text`` (percent-encoded) in ``part``, and the field its error names."""
    value = _enc(text)
    return {
        "user": (f"postgresql://a{value}b:{SECRET}@db.local/app", "DATABASE_URL user"),
        "password": (f"postgresql://app:{SECRET}{value}@db.local/app", "DATABASE_URL password"),
        "database": (f"postgresql://app:{SECRET}@db.local/a{value}b",
                     "DATABASE_URL database name"),
        "host": (f"postgresql://app:{SECRET}@db{value}.local/app", "DATABASE_URL host"),
    }.get(part) or (f"{BASE}?{part}=a{value}b", f"DATABASE_URL parameter {part!r}")


PARTS = ["user", "password", "database", "host", "application_name", "schema", "options",
         "sslpassword", "sslcert", "sslrootcert", "passfile", "krbsrvname", "service"]


@pytest.mark.parametrize("part", PARTS)
def test_a_nul_byte_in_any_part_is_refused_by_name(part: str) -> None:
    raw, field = _with(part, "\x00")
    error = _refused(raw)
    assert error.field == field and ("NUL" in error.rule or "control character" in error.rule)


def test_the_probes_nul_bytes_are_config_errors_not_driver_errors() -> None:
    for raw, field in [
            ("postgresql://postgres:pa%00ssQ7@127.0.0.1:5432/probe_x", "DATABASE_URL password"),
            ("postgresql://po%00stgres@127.0.0.1:5432/probe_x", "DATABASE_URL user"),
            ("postgresql://postgres@127.0.0.1:5432/probe%00_x", "DATABASE_URL database name"),
            ("postgresql://postgres@127.0.0.1:5432/probe_x?application_name=a%00b",
             "DATABASE_URL parameter 'application_name'"),
            ("postgresql://postgres@127.0.0.1:5432/probe_x?schema=a%00b",
             "DATABASE_URL parameter 'schema'")]:
        with pytest.raises(ConfigError) as caught:
            load_settings({"DATABASE_URL": raw})
        assert caught.value.field == field
        assert "ssQ7" not in str(caught.value) + repr(caught.value.args)


@pytest.mark.parametrize("control", CONTROLS[1:])
@pytest.mark.parametrize("part", [p for p in PARTS if p not in ("password", "sslpassword")])
def test_other_control_characters_are_refused_but_in_passwords(part: str, control: str) -> None:
    raw, field = _with(part, control)
    assert _refused(raw).field == field


@pytest.mark.parametrize("control", CONTROLS[1:])
def test_a_password_may_hold_any_character_but_nul(control: str) -> None:
    password = f"{SECRET}{control}x"
    conn = parse_database_url(f"postgresql://app:{_enc(password)}@db.local/app"
                              f"?sslpassword={_enc(password)}")
    assert conn.url.password == password and conn.libpq["sslpassword"] == password
    assert conninfo_to_dict(conn.libpq_url())["password"] == password
    assert SECRET not in repr(conn) + conn.safe_url()


@pytest.mark.parametrize(("raw", "field"), [
    (f"postgresql://a%FFb:{SECRET}@db.local/app", "DATABASE_URL user"),
    (f"postgresql://app:{SECRET}%C3@db.local/app", "DATABASE_URL password"),
    (f"postgresql://app:{SECRET}@db.local/a%E9b", "DATABASE_URL database name"),
    (f"postgresql://app:{SECRET}@db%FF.local/app", "DATABASE_URL host"),
    (f"{BASE}?application_name=a%C3%28", "DATABASE_URL parameter 'application_name'"),
    (f"{BASE}?sslpassword={SECRET}%FF", "DATABASE_URL parameter 'sslpassword'"),
])
def test_percent_encoded_bytes_that_are_not_utf8_are_refused(raw: str, field: str) -> None:
    # Decoded with replacement characters, they would reach libpq as other bytes.
    error = _refused(raw)
    assert error.field == field and "UTF-8" in error.rule


# -- empty and over-long names -------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["postgresql://@db.local/app",
                                 f"postgresql://:{SECRET}@db.local/app"])
def test_an_empty_user_is_refused_not_replaced_by_the_system_user(raw: str) -> None:
    error = _refused(raw)
    assert error.field == "DATABASE_URL user" and "is empty" in error.rule


@pytest.mark.parametrize("raw", ["postgresql://db.local/", "postgresql://db.local",
                                 "postgresql://app@db.local:5432"])
def test_an_empty_database_name_is_refused(raw: str) -> None:
    assert "must name a database" in _refused(raw).rule


def test_without_an_at_sign_libpq_chooses_the_user() -> None:
    assert parse_database_url("postgresql://db.local/app").url.username is None


@pytest.mark.parametrize(("part", "field"), [("user", "DATABASE_URL user"),
                                             ("database", "DATABASE_URL database name")])
def test_names_longer_than_postgresql_keeps_are_refused(part: str, field: str) -> None:
    def url(name: str) -> str:
        return (f"postgresql://{_enc(name)}@db.local/app" if part == "user"
                else f"postgresql://app@db.local/{_enc(name)}")
    for fits in ("a" * 63, "é" * 31 + "a"):
        parse_database_url(url(fits))
    for too_long in ("a" * 64, "é" * 32):  # 64 bytes: the server would cut them to 63
        error = _refused(url(too_long))
        assert error.field == field and "at most 63 bytes" in error.rule


# -- schema: one name, never more settings or more schemas ---------------------------------------

@pytest.mark.parametrize("schema", ["tenant", "app_2", "_x", "a" * 63, "public"])
def test_a_schema_name_is_the_whole_search_path(schema: str) -> None:
    conn = parse_database_url(f"{BASE}?schema={schema}")
    assert conn.schema == schema
    assert connect_args(conn)["options"] == f"-c search_path={schema}"


@pytest.mark.parametrize("schema", [
    "x -c statement_timeout=1", "x%20-c%20statement_timeout%3D1", "x\\ -c\\ a=1",
    "public,pg_catalog", "public%2Cpg_catalog", '"Tenant"', "'x'", "Tenant", "a b", "",
    "pg_catalog", "pg_temp", "1abc", "a" * 64, "t$", "tenant;drop", "ténant", "$user",
])
def test_a_schema_that_is_not_one_plain_name_is_refused(schema: str) -> None:
    error = _refused(f"{BASE}?schema={schema}")
    assert error.field in ("schema", "DATABASE_URL parameter 'schema'")


@given(st.text(max_size=70))
@example("x -c statement_timeout=1")
@example("public,pg_catalog")
def test_any_schema_is_refused_or_one_identifier_in_the_options(schema: str) -> None:
    try:
        conn = parse_database_url(f"{BASE}?schema={_enc(schema)}")
    except ConfigError as error:
        assert error.field in ("schema", "DATABASE_URL parameter 'schema'")
        return
    assert SCHEMA_NAME.fullmatch(schema) and conn.schema == schema
    options = connect_args(conn)["options"]
    assert options.split() == ["-c", f"search_path={schema}"] and "," not in options


def test_a_schema_keeps_the_urls_own_options(server: ConnectionSettings) -> None:
    base = server.libpq_url()
    conn = parse_database_url(f"{base}{'&' if '?' in base else '?'}"
                              "options=-c%20statement_timeout%3D4321&schema=public")
    with psycopg.connect(conn.libpq_url(), **connect_args(conn)) as live:
        assert live.execute("SHOW statement_timeout").fetchone() == ("4321ms",)
        assert live.execute("SHOW search_path").fetchone() == ("public",)


@pytest.mark.parametrize("port", ["0", "65536", "abc", "5432,", " 5432", "-1",
                                  "\uff15\uff14\uff13\uff12"])  # full-width digits
def test_a_port_parameter_is_checked_before_connecting(port: str) -> None:
    error = _refused(f"{BASE}?port={quote(port)}")
    assert error.field == "port" and "1 to 65535" in error.rule


def test_a_port_parameter_may_name_one_port_per_host() -> None:
    assert parse_database_url(f"{BASE}?port=5432,5433").libpq["port"] == "5432,5433"


# -- fixed-choice libpq keywords -----------------------------------------------------------------

@pytest.mark.parametrize("keyword", sorted(CHOICES))
def test_fixed_choice_keywords_refuse_a_typo_by_name(keyword: str) -> None:
    for value in CHOICES[keyword]:
        assert parse_database_url(f"{BASE}?{keyword}={value}").libpq[keyword] == value
    for value in ("bogus", "", "REQUIRE", "require ", "2"):
        error = _refused(f"{BASE}?{keyword}={quote(value)}")
        assert error.field == keyword and "must be one of" in error.rule


@pytest.mark.parametrize("keyword", sorted(CHOICES))
def test_every_accepted_choice_is_one_libpq_takes(keyword: str) -> None:
    # Port 1 refuses: libpq checks its options before it tries, so a value it does not know
    # is "invalid <keyword> value" instead of the refusal.
    for value in CHOICES[keyword]:
        with pytest.raises(psycopg.OperationalError) as caught:
            psycopg.connect(f"postgresql://u@127.0.0.1:1/db?connect_timeout=2&{keyword}={value}")
        assert f"invalid {keyword} value" not in str(caught.value), value


def test_the_probes_sslmode_is_a_settings_error_with_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", f"{BASE}?sslmode=bogus")
    assert main(["migrate", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sslmode: must be one of disable, allow, prefer, require, "
                          "verify-ca, verify-full") and err.count("\n") == 1


# -- user, password and dbname belong in the URL, not its parameters -----------------------------

@pytest.mark.parametrize("keyword", sorted(REFUSED))
def test_user_password_and_dbname_parameters_say_where_they_go(keyword: str) -> None:
    for value in (SECRET, "", f"{SECRET}%00"):
        error = _refused(f"{BASE}?{keyword}={value}")
        assert error.field == f"DATABASE_URL parameter {keyword!r}"
        assert "not accepted as a parameter" in error.rule and "postgresql://" in error.rule
    assert _refused(f"{BASE}?sslmode=require&{keyword}={SECRET}").field.endswith(f"{keyword!r}")


def test_each_url_names_itself_in_a_refusal() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"DATABASE_URL": BASE, "DATABASE_READ_URL": f"{BASE}?password={SECRET}"})
    assert caught.value.field == "DATABASE_READ_URL parameter 'password'"
    assert SECRET not in str(caught.value)


# -- repeated and value-less parameters ----------------------------------------------------------

@pytest.mark.parametrize("query", [
    "connection_limit=5&connection_limit=7", "pgbouncer=true&pgbouncer=false",
    "sslmode=require&sslmode=disable", "schema=a&schema=a", "sslpassword=x&sslpassword=y",
    "connect_timeout=5&sslmode=require&connect_timeout=6", "sslmode=require&sslm%6Fde=disable",
])
def test_a_repeated_parameter_is_refused_by_name(query: str) -> None:
    name = query.partition("=")[0]
    error = _refused(f"{BASE}?{query}")
    assert error.field == f"DATABASE_URL parameter {name!r}" and "more than once" in error.rule


@pytest.mark.parametrize("query", ["schema", "sslmode", "pgbouncer&sslmode=require"])
def test_a_parameter_without_a_value_is_refused(query: str) -> None:
    error = _refused(f"{BASE}?{query}")
    assert error.field == f"DATABASE_URL parameter {query.partition('&')[0]!r}"
    assert "has no value" in error.rule


# -- numbers: every one bounded, every bound documented ------------------------------------------

@pytest.mark.parametrize(("parameter", "most"), [
    ("connection_limit", str(MAX_POOL_SIZE)), ("pool_timeout", f"{MAX_POOL_TIMEOUT:g}"),
    *((name, str(most)) for name, (_, most) in WHOLE_NUMBERS.items()),
])
def test_url_numbers_have_a_maximum(parameter: str, most: str) -> None:
    parse_database_url(f"{BASE}?{parameter}={most}")
    for over in (str(int(most) + 1), "99999999999999999999"):
        error = _refused(f"{BASE}?{parameter}={over}")
        assert error.field == parameter and most in error.rule
    assert _refused(f"{BASE}?{parameter}=1e400").field == parameter


def test_keepalive_maxima_are_what_linux_takes() -> None:
    assert WHOLE_NUMBERS["keepalives_idle"][1] == WHOLE_NUMBERS["keepalives_interval"][1] == 32767
    assert WHOLE_NUMBERS["keepalives_count"][1] == 127
    assert WHOLE_NUMBERS["connect_timeout"][1] == WHOLE_NUMBERS["tcp_user_timeout"][1] == INT_MAX


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "1_0", " 5", "\u0665", "abc", ""])
def test_keepalives_count_is_a_whole_number_from_one(value: str) -> None:
    assert _refused(f"{BASE}?keepalives_count={quote(value)}").field == "keepalives_count"


@pytest.mark.parametrize(("variable", "good", "bad"), [
    ("SHARED_DB_LOCK_RETRIES", ["0", "5", str(MAX_LOCK_RETRIES)],
     [str(MAX_LOCK_RETRIES + 1), "99999999999999999999", "-1", "1.5", "two", "\u0665"]),
    ("SHARED_DB_LOCK_TIMEOUT", ["0.001", "5", f"{MAX_LOCK_TIMEOUT:g}"],
     ["86400.5", "1e9", "inf", "nan", "0", "1_0", "5s"]),
    ("SHARED_DB_SLOW_QUERY_MS", ["1", "250.5", f"{MAX_SLOW_QUERY_MS:.0f}"],
     ["86400001", "1e300", "inf", "0.5", "1_000"]),
    ("SHARED_DB_N_PLUS_ONE", ["1", "10", str(MAX_N_PLUS_ONE)],
     [str(MAX_N_PLUS_ONE + 1), "0", "2.5", "0.5", "1e3", "inf", "-3"]),
])
def test_environment_numbers_have_a_range(variable: str, good: list[str], bad: list[str],
                                          ) -> None:
    for value in good:
        load_settings({variable: value})
    for value in bad:
        with pytest.raises(ConfigError) as caught:
            load_settings({variable: value})
        assert caught.value.field == variable, value


def test_the_n_plus_one_threshold_is_never_rounded() -> None:
    assert load_settings({"SHARED_DB_N_PLUS_ONE": "3"}).log.n_plus_one == 3
    with pytest.raises(ConfigError, match="SHARED_DB_N_PLUS_ONE: must be a whole number from 1"):
        load_settings({"SHARED_DB_N_PLUS_ONE": "0.5"})


_NUMBER_TEXT = st.one_of(st.text(max_size=12), st.integers(-10, 10**25).map(str),
                         st.floats(allow_nan=True, allow_infinity=True).map(repr),
                         st.integers(4000, 6000).map(lambda n: "9" * n))  # past int()'s limit


@given(variable=st.sampled_from(["SHARED_DB_LOCK_RETRIES", "SHARED_DB_LOCK_TIMEOUT",
                                 "SHARED_DB_SLOW_QUERY_MS", "SHARED_DB_N_PLUS_ONE"]),
       value=_NUMBER_TEXT)
def test_any_environment_number_is_in_range_or_refused_by_name(variable: str, value: str,
                                                               ) -> None:
    if "\x00" in value:
        return  # no environment variable can hold one
    try:
        settings = load_settings({variable: value})
    except ConfigError as error:
        assert error.field == variable and "\n" not in str(error)
        return
    got = {"SHARED_DB_LOCK_RETRIES": settings.lock_retries,
           "SHARED_DB_LOCK_TIMEOUT": settings.lock_timeout,
           "SHARED_DB_SLOW_QUERY_MS": settings.log.slow_ms,
           "SHARED_DB_N_PLUS_ONE": settings.log.n_plus_one}[variable]
    low, high = {"SHARED_DB_LOCK_RETRIES": (0, MAX_LOCK_RETRIES),
                 "SHARED_DB_LOCK_TIMEOUT": (0.001, MAX_LOCK_TIMEOUT),
                 "SHARED_DB_SLOW_QUERY_MS": (1, MAX_SLOW_QUERY_MS),
                 "SHARED_DB_N_PLUS_ONE": (1, MAX_N_PLUS_ONE)}[variable]
    assert low <= got <= high


@given(st.text(max_size=24))
@example("99999999999999999999")
@example("9" * 5000)
def test_any_url_number_is_in_range_or_refused_by_name(value: str) -> None:
    for parameter in ("connection_limit", "pool_timeout", *WHOLE_NUMBERS):
        try:
            conn = parse_database_url(f"{BASE}?{parameter}={_enc(value)}")
        except ConfigError as error:
            assert error.field in (parameter, f"DATABASE_URL parameter {parameter!r}")
            continue
        if parameter == "connection_limit":
            assert 1 <= conn.pool_size <= MAX_POOL_SIZE
        elif parameter == "pool_timeout":
            assert 0.001 <= conn.pool_timeout <= MAX_POOL_TIMEOUT
        else:
            assert 1 <= int(conn.libpq[parameter]) <= WHOLE_NUMBERS[parameter][1]


# -- any hostile URL ------------------------------------------------------------------------------

# "\udcff": how os.environ spells a byte that is not UTF-8.
_HOSTILE = st.text(st.sampled_from("ab9_%00%01%0A%7F%FF%C3%25\x00\n\t é,;'\"=&?@:/ -\udcff"),
                   max_size=10)


@given(user=_HOSTILE, password=_HOSTILE, database=_HOSTILE, key=st.sampled_from(
    ["schema", "application_name", "options", "sslmode", "sslpassword", "user", "password",
     "connection_limit", "keepalives_count"]), value=_HOSTILE)
@example(user="a", password="pa%00ss", database="probe_x", key="schema", value="a%00b")
@example(user="a", password="p\udcff", database="probe_x", key="options", value="\udcff")
def test_hostile_urls_are_accepted_as_libpq_reads_them_or_refused(
        user: str, password: str, database: str, key: str, value: str) -> None:
    # The password starts with a mark no other part can spell: "Ø" (%C3%98) needs an 8, which
    # the alphabet lacks (a plain letter could come from %5A in the user, say).
    secret = f"%C3%98{password}"
    raw = f"postgresql://{user}:{secret}@127.0.0.1:5432/{database}?{key}={value}"
    try:
        conn = parse_database_url(raw)
    except ConfigError as error:
        assert error.field and error.rule and "\n" not in str(error)
        assert "\u00d8" not in str(error) + repr(error.args) + error.field + error.rule
        assert "%C3%98" not in str(error) + repr(error.args)
        return
    assert "\u00d8" not in repr(conn) + conn.safe_url() and "%C3%98" not in repr(conn)
    parsed = conninfo_to_dict(conn.libpq_url())  # what libpq takes, NUL-free
    assert parsed["password"] == conn.url.password and "\x00" not in (conn.url.password or "")
    assert parsed.get("user") == conn.url.username and parsed["dbname"] == conn.database
    for text in (conn.url.username or "", conn.database, *conn.libpq.values()):
        assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text) or (
            text == conn.libpq.get("sslpassword"))


# -- the migrations folder -----------------------------------------------------------------------

@pytest.mark.parametrize(("folder", "rule"), [
    ("/nonexistent", "which does not exist"), ("/etc/passwd", "which is not a directory"),
    ("/", "which has no env.py"),
])
def test_a_migrations_folder_that_is_none_is_refused_when_read(folder: str, rule: str) -> None:
    settings = load_settings({"SHARED_DB_MIGRATIONS_DIR": folder})  # a service never reads it
    assert folder in repr(settings)
    with pytest.raises(ConfigError) as caught:
        _ = settings.migrations_dir
    assert caught.value.field == "SHARED_DB_MIGRATIONS_DIR" and rule in caught.value.rule
    assert load_settings({"SHARED_DB_MIGRATIONS_DIR": "/etc/passwd"}) is not None


def test_a_migrations_folder_copy_is_taken(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    (folder / "versions").mkdir(parents=True)
    shutil.copy(PACKAGE_MIGRATIONS / "env.py", folder / "env.py")
    settings = load_settings({"SHARED_DB_MIGRATIONS_DIR": str(folder)})
    assert settings.migrations_dir == folder
    assert load_settings({}).migrations_dir == PACKAGE_MIGRATIONS
    assert Settings(database_url=None).migrations_dir == PACKAGE_MIGRATIONS
    assert dataclasses.replace(settings, lock_retries=1).migrations_dir == folder
    assert Settings(database_url=None, migrations_dir=str(folder)).migrations_dir == folder


@pytest.mark.parametrize("folder", ["/nonexistent", "/etc/passwd", "/"])
@pytest.mark.parametrize("args", [
    ["migrate", "lint"], ["migrate", "squash", "--chain", "auth", "--to", "20260103000000"]])
def test_migration_commands_refuse_a_bad_folder_with_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], folder: str,
        args: list[str]) -> None:
    monkeypatch.setenv("SHARED_DB_MIGRATIONS_DIR", folder)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: SHARED_DB_MIGRATIONS_DIR: must be ")
    assert captured.err.count("\n") == 1


def test_the_installed_command_prints_no_traceback_for_a_bad_folder(tmp_path: Path) -> None:
    env = {**os.environ, "SHARED_DB_MIGRATIONS_DIR": "/nonexistent"}
    done = subprocess.run([sys.executable, "-m", "shared_db", "migrate", "lint"], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "error: SHARED_DB_MIGRATIONS_DIR: must be an existing directory (a copy of the "
        "package's shared_db/migrations), got '/nonexistent', which does not exist"]


@pytest.mark.parametrize("url", [
    f"postgresql://app:{SECRET}%00@db.local/app", f"{BASE}?password={SECRET}",
    f"{BASE}?connection_limit=5&connection_limit=7", f"{BASE}?schema=x%20-c%20a%3D1",
    f"{BASE}?sslmode=bogus", f"{BASE}?connection_limit=99999999999999999999",
])
def test_hostile_urls_on_the_command_line_are_one_line_with_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["db", "url"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: ") and SECRET not in captured.err


@pytest.mark.parametrize("env", [
    {"SHARED_DB_SLOW_QUERY_MS": 5}, {"DATABASE_URL": 5}, {"SHARED_DB_HOME": 5}, {5: "x"},
    [("DATABASE_URL", "postgresql://h/db")], "DATABASE_URL",
], ids=repr)
def test_an_environment_that_is_not_strings_is_refused_by_name(env: object) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)  # type: ignore[arg-type]
    assert caught.value.field in ("env", "SHARED_DB_SLOW_QUERY_MS", "DATABASE_URL",
                                  "SHARED_DB_HOME")
