"""What spans and series are labelled with: a CTE's command, every host of a URL, and settings
read as a .env file spells them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shared_db import tracing
from shared_db.config import load_settings
from shared_db.errors import ConfigError
from shared_db.metrics import where


@pytest.mark.parametrize(("text", "command"), [
    ("SELECT 1", "SELECT"),
    ("WITH u AS (INSERT INTO users VALUES (1) RETURNING id) INSERT INTO a SELECT id FROM u",
     "INSERT"),
    ("WITH RECURSIVE a(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM a) SELECT * FROM a",
     "SELECT"),
    ("WITH a AS (SELECT ')' AS x, \"(\" FROM t) UPDATE t SET y = 1", "UPDATE"),
    ("WITH a AS MATERIALIZED (SELECT 1) /* ( */ DELETE FROM t", "DELETE"),
])
def test_the_command_of_a_statement(text: str, command: str) -> None:
    assert tracing._command(text) == command


def test_a_pool_of_several_hosts_names_each_host_with_its_port() -> None:
    def server(conninfo: str) -> str:
        return where(SimpleNamespace(conninfo=conninfo))[1]  # type: ignore[arg-type]

    assert server("host=a port=5433 dbname=d") == "a:5433"
    assert server("host=a,b port=5433 dbname=d") == "a:5433,b:5433"
    assert server("host=a,b port=5433,5434 dbname=d") == "a:5433,b:5434"
    assert server("host=a,b dbname=d") == "a:5432,b:5432"


def test_flags_and_choices_forgive_blanks_and_quote_what_was_given() -> None:
    settings = load_settings({"SHARED_DB_TRACING": " true ", "SHARED_DB_LOG_FORMAT": "json\n"})
    assert settings.telemetry.tracing and settings.log.log_format == "json"
    with pytest.raises(ConfigError, match=r"got 'true\\nINJECT'"):
        load_settings({"SHARED_DB_TRACING": "true\nINJECT"})
    with pytest.raises(ConfigError) as refused:
        load_settings({"SHARED_DB_TRACING": "x" * 100_000})
    assert len(str(refused.value)) < 200


def test_leading_zeros_are_no_digits_of_a_number() -> None:
    assert load_settings({"SHARED_DB_N_PLUS_ONE": "0" * 40 + "5"}).log.n_plus_one == 5
    with pytest.raises(ConfigError, match="at most"):
        load_settings({"SHARED_DB_N_PLUS_ONE": "9" * 40})
