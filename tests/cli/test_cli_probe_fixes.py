"""What a user's probe of the command line found, fixed: ``studio`` without its extra, restores
of malformed manifests (generated and chosen), a ``deploy --dry-run`` that agrees with the
deploy it previews, and ``metrics`` serving ``/metrics`` only and saying which server it uses.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_db import devserver
from shared_db.cli import main
from shared_db.errors import BackupError
from shared_db.ops import backup as backups
from shared_db.ops.checksums import (
    BIGINT,
    Manifest,
    ManifestFieldError,
    manifest_path,
    parse_manifest,
)
from shared_db.url import ConnectionSettings, parse_database_url
from tests.cli.test_migrate_review import _ok
from tests.conftest import DbFixture
from tests.migrations.extra import copy_with, migration
from tests.state import digest

NOWHERE = "postgresql://nobody@127.0.0.1:1/nothing"  # refused at once: nothing is started

# ---------------------------------------------------------------------------------------------
# 1. ``studio`` without the ``studio`` extra: one line and exit 2, arguments checked first.

# The child blocks the named modules the way a missing package would look to an import.
_BLOCKED = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
sys.argv = ["shared-db", *{args!r}]
from shared_db.cli import run
run()
"""


def _without(blocked: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": NOWHERE}
    return subprocess.run([sys.executable, "-c", _BLOCKED.format(blocked=blocked, args=args)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    return line


@pytest.mark.parametrize(("blocked", "named"), [
    (["uvicorn"], "uvicorn is not installed"),
    (["starlette"], "starlette is not installed"),
    (["jinja2"], "jinja2 is not installed"),
    (["python_multipart", "multipart"], "python-multipart is not installed"),
    (["uvicorn", "jinja2"], "uvicorn and jinja2 are not installed"),
    (["anyio"], "module anyio is not installed"),  # a dependency of Starlette
])
def test_studio_without_its_extra_says_how_to_install_it(blocked: list[str],
                                                         named: str) -> None:
    result = _without(blocked, "studio", "--no-browser")
    line = _one_line(result)
    assert result.returncode == 2 and named in line, line
    assert "pip install 'shared-db[studio]'" in line


@pytest.mark.parametrize("blocked", [[], ["uvicorn"]])
@pytest.mark.parametrize(("args", "message"), [
    (["--host", "0.0.0.0"], "--host: 0.0.0.0 is not a loopback address"),
    (["--read-only", "--writes"], "--writes: cannot be combined with --read-only"),
])
def test_studio_arguments_are_refused_before_the_extra_is_loaded(
        blocked: list[str], args: list[str], message: str) -> None:
    result = _without(blocked, "studio", "--no-browser", *args)
    line = _one_line(result)
    assert result.returncode == 2 and message in line, line


def test_metrics_needs_no_extra() -> None:
    """prometheus_client is a dependency, not an extra: ``metrics`` reaches the database."""
    result = _without(["uvicorn", "starlette", "jinja2"], "metrics", "--port", "0")
    line = _one_line(result)
    assert result.returncode == 3 and "cannot connect" in line, line


# ---------------------------------------------------------------------------------------------
# 2. Malformed manifests: generated against ``parse_manifest``, chosen ones through the CLI.

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)
whole = st.integers(0, BIGINT)
valid_manifests = st.fixed_dictionaries({
    "file": st.sampled_from(["backup_20260101_000000.dump", "backup_20260101_000000.sql.gz"]),
    "format": st.sampled_from(["custom", "sql.gz"]),
    "bytes": whole,
    "sha256": st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
    "duration_s": st.floats(0, 1e6) | st.integers(0, 10**6),
    "created_at": st.datetimes().map(lambda d: d.isoformat()),
    "server_version": st.text(max_size=20),
    "pg_dump_version": st.text(max_size=20),
    "database": st.text(max_size=40),
    "schema": names,
    "migrations": st.dictionaries(st.text(max_size=10), st.none() | st.text(max_size=20),
                                  max_size=4),
    "tables": st.dictionaries(names, st.fixed_dictionaries({
        "rows": whole, "checksum": st.from_regex(r"[0-9]{1,38}", fullmatch=True)}), max_size=5),
})
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)
# Per field, values of a kind it never takes (JSON's kinds, numbers out of range, near misses).
WRONG: dict[str, st.SearchStrategy[Any]] = {
    "file": st.sampled_from([5, None, [], {}, "", "dir/backup.dump", ".."]),
    "format": st.sampled_from(["zip", "CUSTOM", "", 1, None, ["custom"]]),
    "bytes": st.sampled_from(["36572", -1, BIGINT + 1, 10**400, 1.5, True, None, {}]),
    "sha256": st.sampled_from(["", "ABC", "g" * 64, "A" * 64, 0, None]),
    "duration_s": st.sampled_from(["1.5", -0.1, 1e300, 10**30, True, None, []]),
    "created_at": st.sampled_from(["yesterday", "", 20260101, None]),
    "server_version": st.sampled_from([18, None, [], {}]),
    "pg_dump_version": st.sampled_from([18.0, None, True]),
    "database": st.sampled_from([None, 1, []]),
    "schema": st.sampled_from(["", "1abc", "a b", "x" * 64, "a;drop", None, 3]),
    "migrations": st.sampled_from([[], "auth", None, {"auth": 5}, {"auth": ["x"]}]),
    "tables": st.sampled_from([
        [], {"users": 5}, "users", None, {"users": {"rows": "5", "checksum": "1"}},
        {"users": {"rows": 1}}, {"users": {"checksum": "1"}},
        {"users": {"rows": -1, "checksum": "1"}}, {"users": {"rows": 1, "checksum": 1}},
        {"users": {"rows": BIGINT + 1, "checksum": "1"}},
        {"users": {"rows": 1, "checksum": "1" * 39}},
        {"users": {"rows": 1, "checksum": "\u00b2"}},  # a digit to str.isdigit, not to int()
        {"users": {"rows": 1, "checksum": ""}}, {"users": {"rows": True, "checksum": "1"}},
        {"users": {"rows": 1, "checksum": "1", "extra": 0}},
        # a table may be named "bad name" (quoted): a name is bad past 63 bytes or with a NUL
        {"x" * 64: {"rows": 1, "checksum": "1"}}, {"a\x00b": {"rows": 1, "checksum": "1"}},
        {"": {"rows": 1, "checksum": "1"}}]),
}


@settings(max_examples=300, deadline=None)
@given(valid_manifests)
def test_a_valid_manifest_parses_to_itself(doc: dict[str, Any]) -> None:
    manifest = parse_manifest(json.loads(json.dumps(doc)))
    assert manifest == Manifest(**{**doc, "duration_s": float(doc["duration_s"])})


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_any_json_is_a_manifest_or_a_named_refusal(doc: Any) -> None:
    try:
        parse_manifest(doc)
    except ManifestFieldError as exc:
        assert exc.field and "\n" not in str(exc)


@settings(max_examples=400, deadline=None)
@given(valid_manifests, st.data())
def test_each_wrong_field_is_refused_by_name(doc: dict[str, Any], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(WRONG)))
    broken = copy.deepcopy(doc)
    action = data.draw(st.sampled_from(["replace", "delete"]))
    if action == "delete":
        del broken[name]
    else:
        broken[name] = data.draw(WRONG[name])
    with pytest.raises(ManifestFieldError) as caught:
        parse_manifest(broken)
    assert caught.value.field.startswith((name, f"field {name!r}")), (caught.value, name)
    assert "\n" not in str(caught.value)
    extra = {**doc, data.draw(st.text(min_size=1).filter(lambda k: k not in doc)): 1}
    with pytest.raises(ManifestFieldError, match="is unknown"):
        parse_manifest(extra)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_manifest_file_reads_or_is_a_backup_error(tmp_path: Path, content: bytes) -> None:
    where = tmp_path / "backup_x.manifest.json"
    where.write_bytes(content)
    try:
        Manifest.read(where)
    except BackupError as exc:
        assert str(where) in str(exc) and "\n" not in str(exc)


@pytest.fixture
def backup_file(migrated_db: DbFixture, tmp_path: Path) -> Iterator[tuple[DbFixture, Path]]:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('k', '1')")
    yield migrated_db, backups.backup(migrated_db.target(), tmp_path / "backups").file


CHOSEN: list[tuple[str, Any, str]] = [
    ("tables", [], "tables must be an object"),
    ("tables", {"users": 5}, "tables.users must be an object"),
    ("tables", {"users": {"rows": "5", "checksum": "1"}}, "tables.users.rows must be a whole"),
    ("tables", {"users": {"rows": 10**30, "checksum": "1"}}, "tables.users.rows must be a whole"),
    ("bytes", "36572", "bytes must be a whole number"),
    ("bytes", 10**400, "bytes must be a whole number"),
    ("duration_s", "0.5", "duration_s must be a number"),
    ("sha256", None, "sha256 is missing"),
    ("format", "zip", "format must be one of custom, sql.gz, got 'zip'"),
    ("schema", "a;b", "schema must be a schema name"),
    ("migrations", {"auth": 7}, "migrations.auth must be a revision"),
    ("extra", 1, "field 'extra' is unknown"),
]


def test_malformed_manifests_through_the_cli_restore_nothing(
        backup_file: tuple[DbFixture, Path]) -> None:
    db, file = backup_file
    where = manifest_path(file)
    original = json.loads(where.read_text())
    env = db.env()
    before = digest(db.url)
    cases: list[tuple[str, str]] = []
    for name, value, message in CHOSEN:
        doc = dict(original)
        if name == "sha256":
            del doc[name]
        else:
            doc[name] = value
        cases.append((json.dumps(doc), message))
    cases += [("[1, 2]", "the manifest must be a JSON object, got an array"),
              ('"text"', "the manifest must be a JSON object, got 'text'"),
              ("{", "not JSON"), ('{"bytes": NaN}', "NaN is not a JSON number"),
              ("[" * 100_000, "nested too deeply")]
    for text, message in cases:
        where.write_text(text)
        result = subprocess.run([sys.executable, "-m", "shared_db", "restore", "--force",
                                 str(file)], env=env, capture_output=True, text=True,
                                timeout=120, check=False)
        line = _one_line(result)
        assert result.returncode == 6 and message in line and str(where) in line, line
    assert digest(db.url) == before
    where.write_text(json.dumps(original))
    # a file that is a directory, and a format its name does not end in
    result = subprocess.run([sys.executable, "-m", "shared_db", "restore", "--force",
                             str(file.parent)], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    line = _one_line(result)
    assert result.returncode == 6 and "is a directory, not a backup file" in line, line
    where.write_text(json.dumps({**original, "format": "sql.gz"}))
    result = subprocess.run([sys.executable, "-m", "shared_db", "restore", "--force",
                             str(file)], env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    line = _one_line(result)
    assert result.returncode == 6 and "says format 'sql.gz'" in line, line
    assert digest(db.url) == before


# ---------------------------------------------------------------------------------------------
# 3. ``migrate deploy --dry-run`` says what the deploy would do, and exits as it would.

SAFE = migration('op.execute("CREATE TABLE dry_run_notes (id int)")',
                 'op.execute("DROP TABLE dry_run_notes")')
INDEX = migration('op.execute("CREATE INDEX system_config_value_idx ON system_config (value)")',
                  revision="20261203000000", down_revision="20261202000000")


def _version(url: str, chain: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT version_num FROM alembic_version_{chain}").fetchone()
    return None if row is None else str(row[0])


def test_a_dry_run_that_meets_a_refusal_says_so_and_exits_4(migrated_db: DbFixture,
                                                             tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_notes": SAFE,
                                  "admin/20261203000000_value_idx": INDEX})
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("INSERT INTO system_config (key, value) VALUES ('k', '1')")
    env = {**migrated_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder)}
    before = _version(migrated_db.url, "admin")
    dry = subprocess.run([sys.executable, "-m", "shared_db", "migrate", "deploy", "--dry-run"],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert dry.returncode == 4, dry.stderr
    assert "deploy would refuse admin:20261203000000_value_idx" in dry.stdout
    assert ("Dry run: deploy would apply 1 of the 2 pending migration(s), then refuse "
            "admin:20261203000000_value_idx and stop; nothing was changed.") in dry.stdout
    assert "would be applied;" not in dry.stdout
    line = _one_line(dry)
    assert "deploy would refuse admin:20261203000000_value_idx: create-index on " \
           "public.system_config" in line and "after applying 1 migration(s)" in line, line
    assert _version(migrated_db.url, "admin") == before  # the dry run applied nothing
    real = subprocess.run([sys.executable, "-m", "shared_db", "migrate", "deploy"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert real.returncode == 4 and "refusing admin:20261203000000_value_idx" in real.stderr
    assert _version(migrated_db.url, "admin") == "20261202000000"  # the one before it, as said


def test_a_dry_run_without_refusals_exits_0(migrated_db: DbFixture, tmp_path: Path) -> None:
    folder = copy_with(tmp_path, {"admin/20261202000000_notes": SAFE,
                                  "admin/20261203000000_value_idx": INDEX})
    out = _ok("migrate", "deploy", "--dry-run",  # system_config is empty: nothing refused
              env={**migrated_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder)})
    assert "Dry run: 2 migration(s) would be applied; nothing was changed." in out
    assert "deploy would refuse" not in out


# ---------------------------------------------------------------------------------------------
# 4. ``metrics``: the embedded server's notice on stderr, and ``/metrics`` only.


@pytest.fixture
def embedded_home(server: ConnectionSettings, tmp_path: Path) -> Iterator[Path]:
    """The home of the suite's embedded server, or (when the suite runs on DATABASE_URL's
    server) of one started for this test."""
    if not os.environ.get("DATABASE_URL"):
        yield Path(os.environ.get("SHARED_DB_HOME") or ".shared-db")
        return
    home = tmp_path / "embedded"
    yield home
    devserver.stop(home)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_metrics_says_it_uses_the_embedded_server_and_serves_only_metrics(
        embedded_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SHARED_DB_HOME"] = str(embedded_home)
    process = subprocess.Popen([sys.executable, "-m", "shared_db", "metrics", "--port", "0"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Metrics: http://127.0.0.1:") and line.endswith("/metrics\n"), (
            line, process.stderr.read() if process.poll() is not None else "")
        url = line.split()[1]
        base = url.removesuffix("/metrics")
        assert _status(url) == 200 and _status(f"{url}?name[]=x") == 200
        assert [_status(base + path) for path in ("/", "/other", "/metrics/", "/favicon.ico",
                                                  "/metricsx")] == [404] * 5
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=15)
    assert "Using the embedded PostgreSQL at " in errors and str(embedded_home.resolve()) in errors


def test_metrics_on_an_address_it_cannot_use_is_a_bad_argument(migrated_db: DbFixture) -> None:
    result = subprocess.run([sys.executable, "-m", "shared_db", "metrics", "--port", "0",
                             "--host", "no-such-host.invalid"], env=migrated_db.env(),
                            capture_output=True, text=True, timeout=120, check=False)
    line = _one_line(result)
    assert result.returncode == 2 and "--host: cannot listen on 'no-such-host.invalid'" in line, \
        line


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "-1"])
def test_a_refused_option_value_is_exit_2(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "recover", "--older-than", value]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["bogus"], ["migrate", "bogus"], ["migrate", "status", "--x"],
                                  ["db", "recover", "--older-than", "abc"], ["backup", "--keep"]])
def test_a_usage_error_is_one_line_exit_2(argv: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err


def test_piped_output_is_not_cut_at_80_columns() -> None:
    long_name = "x" * 150
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    code = ("from shared_db.cli.common import console; from rich.table import Table; "
            f"t = Table(); t.add_column('name'); t.add_row('{long_name}'); console.print(t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert long_name in out


@pytest.mark.parametrize("argv", [[], ["migrate"], ["db"]])
def test_no_arguments_prints_the_help_and_no_error(argv: list[str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "Usage" in out + err and "error:" not in out + err


def test_db_url_prints_every_parameter_the_url_gave(monkeypatch, capsys) -> None:
    url = ("postgresql://postgres@127.0.0.1:5432/x?connect_timeout=3&pgbouncer=true"
             "&schema=tenant&connection_limit=7&pool_timeout=2.5")
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["db", "url"]) == 0
    shown = capsys.readouterr().out.strip()
    again, first = parse_database_url(shown), parse_database_url(url)
    assert (again.pgbouncer, again.schema, again.pool_size, again.pool_timeout, again.libpq) == (
        first.pgbouncer, first.schema, first.pool_size, first.pool_timeout, first.libpq)
