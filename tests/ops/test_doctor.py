"""``shared-db doctor``: each known problem is recognised and comes with its fix."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bench.bouncer import client_url
from shared_db.cli import main
from shared_db.config import PACKAGE_MIGRATIONS, load_settings
from shared_db.ops import roles as role_ops
from shared_db.ops.doctor import diagnose
from shared_db.ops.targets import resolve_targets
from shared_db.services import SERVICES
from shared_db.url import ConnectionSettings
from tests.bouncer import pgbouncer
from tests.conftest import DbFixture
from tests.password_server import PASSWORD, password_server


def _run(url: str, **env: str):
    settings = load_settings({"DATABASE_URL": url, **env})
    return {c.name: c for c in diagnose(settings, resolve_targets(settings))}


def test_healthy_database(migrated_db: DbFixture) -> None:
    checks = _run(migrated_db.url)
    assert {n: c.status for n, c in checks.items() if n != "extensions"} == {
        "pool settings": "ok", "server": "ok", "two-phase commit": "ok", "models": "ok",
        "migrations": "ok"}
    assert "PostgreSQL" in checks["server"].detail
    assert checks["extensions"].status in ("ok", "warn")


def test_password_is_hidden(migrated_db: DbFixture) -> None:
    url = migrated_db.url.replace("postgres@", "postgres:hunter2@")
    checks = _run(url + "?connection_limit=3")
    assert "hunter2" not in str(checks) and "pool size 3" in checks["pool settings"].detail


def test_empty_database_reports_missing_models_and_pending(empty_db: DbFixture) -> None:
    checks = _run(empty_db.url)
    assert checks["models"].status == "fail" and "users" in checks["models"].detail
    assert checks["models"].fix == "run `shared-db migrate deploy`"
    assert checks["migrations"].status == "warn" and "10 pending" in checks["migrations"].detail


def test_drift(migrated_db: DbFixture) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("DROP INDEX audit_logs_action_idx")
    check = _run(migrated_db.url)["migrations"]
    assert check.status == "fail" and "audit_logs_action_idx" in check.detail
    # The two ways out it names are the commands that work (tests/cli/test_migrate_capture.py).
    assert check.fix and "`shared-db migrate dev --from-drift --name N`" in check.fix
    assert "`shared-db migrate dev --name N`" in check.fix


def test_migration_conflict(migrated_db: DbFixture, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(PACKAGE_MIGRATIONS, folder)
    source = (folder / "versions/auth/20260103000000_add_sessions.py").read_text()
    (folder / "versions/auth/20260104000000_rival.py").write_text(
        source.replace('revision: str = "20260103000000"', 'revision: str = "20260104000000"'))
    check = _run(migrated_db.url, SHARED_DB_MIGRATIONS_DIR=str(folder))["migrations"]
    assert check.status == "fail" and "migration conflict in chain 'auth'" in check.detail
    assert "guide 12.1, migration conflicts" in (check.fix or "")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_connection_timeout_is_recognised(silent_server: int) -> None:
    checks = _run(f"postgresql://postgres@127.0.0.1:{silent_server}/app?connect_timeout=2")
    check = checks["connection"]
    assert check.status == "fail" and "timeout" in check.detail
    assert "raise connect_timeout" in (check.fix or "")


def test_cli_exit_codes_and_json(migrated_db: DbFixture, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    assert main(["doctor", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in doc["checks"]} >= {"server", "migrations", "models"}
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@127.0.0.1:1/app?bogus=1")
    assert main(["doctor", "--json"]) == 2  # a refused setting, as for every command
    (check,) = json.loads(capsys.readouterr().out)["checks"]
    assert check["status"] == "fail" and "bogus" in check["name"]
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    monkeypatch.setenv("SHARED_DB_MIGRATIONS_DIR", "/nonexistent/migrations")
    assert main(["doctor", "--json"]) == 2  # read only when the migrations are checked
    (check,) = json.loads(capsys.readouterr().out)["checks"]
    assert check["name"] == "SHARED_DB_MIGRATIONS_DIR" and "does not exist" in check["detail"]


@pytest.fixture
def login_role(migrated_db: DbFixture) -> Iterator[Callable[[str], str]]:
    """Makes login roles (no superuser, no grants) and drops them, with their rights, after."""
    made: list[str] = []

    def make(name: str) -> str:
        role = f"{name}_{secrets.token_hex(3)}"
        with psycopg.connect(migrated_db.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        made.append(role)
        return role

    yield make
    _drop_roles(migrated_db.url, made)


def _drop_roles(url: str, roles: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for role in roles:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _as(db: DbFixture, role: str) -> str:
    return db.connection.url.set(username=role).render(hide_password=False)


def test_plain_login_role_gets_unknowns_with_the_grants(migrated_db: DbFixture,
                                                        login_role: Callable[[str], str],
                                                        ) -> None:
    role = login_role("doctor_plain")
    checks = _run(_as(migrated_db, role))
    assert not [c for c in checks.values() if c.status == "fail"]
    migrations = checks["migrations"]
    assert migrations.status == "unknown" and role in migrations.detail
    assert migrations.fix is not None and migrations.fix.startswith("GRANT SELECT ON ")
    extensions = checks["extensions"]
    if "is available" in extensions.detail:  # the server has pg_stat_statements
        assert extensions.status == "unknown"
        assert extensions.fix == f'GRANT pg_read_all_settings TO "{role}"'
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:  # the fixes, as given
        conn.execute(migrations.fix)
        if extensions.status == "unknown":
            conn.execute(extensions.fix or "")
    again = _run(_as(migrated_db, role))
    assert again["migrations"].status == "ok"
    assert again["extensions"].status in ("ok", "warn")


def test_each_service_role(migrated_db: DbFixture, login_role: Callable[[str], str]) -> None:
    prefix = f"doctor_{secrets.token_hex(3)}_"
    role_ops.apply([migrated_db.target()], prefix)
    made = [role_ops.role_name(prefix, s) for s in SERVICES]
    try:
        for role in made:
            checks = _run(_as(migrated_db, role))
            assert checks["server"].status == "ok" and checks["models"].status == "ok", role
            assert not [c for c in checks.values() if c.status == "fail"], role
            unknown = [c for c in checks.values() if c.status == "unknown"]
            assert all((c.fix or "").startswith("GRANT ") for c in unknown), unknown
    finally:
        _drop_roles(migrated_db.url, made)


def test_plain_role_from_the_command_line(migrated_db: DbFixture,
                                          login_role: Callable[[str], str]) -> None:
    role = login_role("doctor_cli")
    done = subprocess.run([sys.executable, "-m", "shared_db", "doctor"], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "DATABASE_URL": _as(migrated_db, role)})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "GRANT SELECT ON" in done.stdout


def test_refused_is_not_called_a_timeout() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check = _run(f"postgresql://postgres@127.0.0.1:{port}/app?connect_timeout=2")["connection"]
    assert check.status == "fail" and ": refused (" in check.detail
    assert "timed out" not in check.detail and "connect_timeout" not in (check.fix or "")
    assert f"nothing listens on 127.0.0.1:{port}" in (check.fix or "")


def test_bad_password() -> None:
    with password_server() as url:
        check = _run(url.replace(PASSWORD, "not-the-password"))["connection"]
        assert _run(url)["server"].status == "ok"
    assert check.status == "fail" and ": authentication failed (" in check.detail
    assert "not-the-password" not in str(check)
    assert "check the user (postgres) and password" in (check.fix or "")


def test_unreachable_exits_3_after_the_report(silent_server: int,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL",
                       f"postgresql://postgres@127.0.0.1:{silent_server}/app?connect_timeout=2")
    assert main(["doctor", "--json"]) == 3
    out, err = capsys.readouterr()
    check = next(c for c in json.loads(out)["checks"] if c["name"] == "connection")
    assert "raise connect_timeout" in check["fix"]
    (line,) = err.strip().splitlines()
    assert ": timed out (" in line


def test_role_without_connect_right(migrated_db: DbFixture,
                                    login_role: Callable[[str], str]) -> None:
    role = login_role("doctor_shut_out")
    database = sql.Identifier(migrated_db.connection.database)
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(database))
    check = _run(_as(migrated_db, role))["connection"]
    assert check.status == "fail" and ": not permitted to connect (" in check.detail
    assert check.fix == (f'GRANT CONNECT ON DATABASE "{migrated_db.connection.database}" '
                         f'TO "{role}"')


@pytest.mark.parametrize("name", ["probe_[/b]", "probe_[red]x"])
def test_names_in_the_report_are_text_not_markup(server, name: str, monkeypatch,
                                                 capsys) -> None:
    from urllib.parse import quote
    base = server.safe_url().rsplit("/", 1)[0].replace("***", "")
    monkeypatch.setenv("DATABASE_URL", f"{base}/{quote(name, safe='')}")
    code = main(["doctor"])
    captured = capsys.readouterr()
    assert code in (1, 3) and "Traceback" not in captured.err
    assert name in captured.out.replace("\n", "")  # the fix names this database, as given


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_each_host_pairs_the_ports_libpq_pairs() -> None:
    from shared_db.ops.doctor_hosts import each_host
    two = (("a", None), ("b", None))
    assert each_host(two, {"port": "1,2"}) == [("a", 1), ("b", 2)]
    assert each_host(two, {"port": "7"}) == [("a", 7), ("b", 7)]
    assert each_host((("a", 3), ("b", None)), {}) == [("a", 3), ("b", 5432)]
    assert each_host((("x", None),), {"host": "a,b", "port": "1,2"}) == [("a", 1), ("b", 2)]


def test_hosts_given_by_port_list_are_each_asked(migrated_db: DbFixture) -> None:
    real, dead = migrated_db.connection.url.hosts[0][1] or 5432, _free_port()
    url = (f"postgresql://postgres@127.0.0.1,127.0.0.1/{migrated_db.connection.database}"
           f"?port={real},{dead}")
    checks = _run(url)
    assert checks[f"host 127.0.0.1:{real}"].detail == "primary"
    assert checks[f"host 127.0.0.1:{dead}"].status == "warn"
    assert checks["replication"].detail.startswith("primary 127.0.0.1:")


def test_no_host_in_the_asked_role_is_said_and_each_host_still_shown(
        migrated_db: DbFixture) -> None:
    real, dead = migrated_db.connection.url.hosts[0][1] or 5432, _free_port()
    url = (f"postgresql://postgres@127.0.0.1:{dead},127.0.0.1:{real}/"
           f"{migrated_db.connection.database}?target_session_attrs=standby")
    checks = _run(url)
    connection = checks["connection"]
    assert connection.status == "fail" and "no host has the role" in connection.detail
    assert "target_session_attrs=standby" in (connection.fix or "")
    assert checks[f"host 127.0.0.1:{real}"].detail == "primary"
    assert checks[f"host 127.0.0.1:{dead}"].status == "warn"


def test_ssl_the_server_lacks_is_named_with_its_fix(migrated_db: DbFixture) -> None:
    # The test servers run without SSL.
    check = _run(f"{migrated_db.url}?sslmode=require")["connection"]
    assert check.status == "fail" and "does not accept SSL" in check.detail
    assert "sslmode=require" in (check.fix or "") and "ssl on" in (check.fix or "")


def test_a_schema_pgbouncer_refuses_or_drops_is_named(
        migrated_db: DbFixture, server: ConnectionSettings) -> None:
    database = migrated_db.connection.database
    with pgbouncer(server) as port:  # refuses the options startup parameter schema= uses
        check = _run(f"{client_url(server, port, database)}?pgbouncer=true&schema=public")[
            "connection"]
    assert check.status == "fail" and "refuses the startup parameter options" in check.detail
    assert "connect_query" in (check.fix or "")
    with pgbouncer(server, ignored="extra_float_digits,options") as port:  # drops it
        checks = _run(f"{client_url(server, port, database)}?pgbouncer=true&schema=tenant1")
    assert checks["schema"].status == "fail"
    assert "search_path" in checks["schema"].detail
    assert "SET search_path = \"tenant1\"" in (checks["schema"].fix or "")
    assert "schema" not in _run(f"{migrated_db.url}?schema=tenant1")  # not made yet: fine


def test_the_read_replica_is_checked_too(migrated_db: DbFixture, monkeypatch, capsys) -> None:
    checks = _run(migrated_db.url, DATABASE_READ_URL=migrated_db.url)
    assert checks["read replica"].status == "warn"
    assert "not in recovery" in checks["read replica"].detail
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    monkeypatch.setenv("DATABASE_READ_URL", "postgresql://postgres@127.0.0.1:1/nothing")
    assert main(["doctor", "--json"]) == 3  # as open() would fail
    found = [c for c in json.loads(capsys.readouterr().out)["checks"]
             if c["name"] == "read replica"]
    assert found and found[0]["detail"].startswith("DATABASE_READ_URL: cannot connect")


def test_per_service_only_the_service_with_a_replica_checks_one(
        service_databases: dict[str, str]) -> None:
    env = {"SHARED_DB_TOPOLOGY": "per-service", "AUTH_READ_URL": service_databases["auth"],
           **{f"{s.upper()}_DATABASE_URL": u for s, u in service_databases.items()}}
    settings = load_settings(env)
    replicas = [c for c in diagnose(settings, resolve_targets(settings))
                if c.name == "read replica"]
    assert [(c.target, c.detail.split(" ")[0]) for c in replicas] == [("auth", "AUTH_READ_URL")]
