"""A database password never shows: not in command output, errors, reports or manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared_db.cli import main
from tests.conftest import DbFixture

SECRET = "s3cr3t-Passw0rd"


@pytest.fixture
def with_password(migrated_db: DbFixture, monkeypatch: pytest.MonkeyPatch) -> str:
    # The test servers trust local connections, so the password is carried but never checked.
    url = migrated_db.url.replace("postgres@", f"postgres:{SECRET}@")
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.mark.parametrize("args", [
    ["migrate", "status"], ["migrate", "status", "--json"], ["migrate", "deploy"],
    ["db", "url"], ["doctor"], ["doctor", "--json"], ["stats", "--json"], ["db", "seed"],
])
def test_commands_hide_the_password(with_password: str, capsys, args: list[str]) -> None:
    main(args)
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    if args[-1] == "--json" and args[0] != "stats":
        assert "postgres:***@" in captured.out


def test_errors_hide_the_password(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{SECRET}@127.0.0.1:1/app")
    assert main(["migrate", "status"]) == 3
    assert SECRET not in capsys.readouterr().err


def test_backup_manifests_hide_the_password(with_password: str, tmp_path: Path,
                                            capsys) -> None:
    assert main(["backup", "--dir", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr().out
    assert SECRET not in out
    manifest = next(tmp_path.glob("*.manifest.json")).read_text()
    assert SECRET not in manifest and "***" in json.loads(manifest)["database"]


@pytest.mark.parametrize("url", [
    f"postgresql://u:{SECRET}@[::1/db", f"postgresql://u:{SECRET}@[zz]/db",
    f"postgresql://u:{SECRET}@host:port/db", f"postgresql://u:{SECRET}/x@host/db",
    f"postgresql://u:{SECRET}@x@host/db", f"postgresql://u?:{SECRET}@host/db",
    f"u:{SECRET}@host/db", f"postgresql://u:{SECRET}@host/db?pool_timeout=0.0004",
    f"postgresql://u:{SECRET}@host/db?connect_timeout=0",
])
def test_a_malformed_url_is_one_line_with_exit_2(monkeypatch: pytest.MonkeyPatch, capsys,
                                                 url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["db", "url"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("error: ") and SECRET not in captured.err
    assert "DATABASE_URL" in captured.err or "_timeout" in captured.err


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"postgresql://u:{SECRET}@[::1/db"}
    done = subprocess.run([sys.executable, "-m", "shared_db", "migrate", "status"], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: DATABASE_URL: is not a valid URL: the host in [ ] must be an IPv6 address with "
        "both brackets, e.g. postgresql://[::1]:5432/app"]


def test_a_value_that_looks_like_markup_is_printed_as_it_is(monkeypatch: pytest.MonkeyPatch,
                                                            capsys) -> None:
    monkeypatch.setenv("SHARED_DB_ENV", "[/]")
    assert main(["db", "url"]) == 2
    assert "got '[/]'" in capsys.readouterr().err


def test_ssl_key_passwords_are_hidden_too(with_password: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", f"{with_password}?sslpassword={SECRET}")
    for args in (["db", "url"], ["migrate", "status", "--json"]):
        main(args)
        captured = capsys.readouterr()
        assert SECRET not in captured.out + captured.err
        assert "sslpassword=***" in captured.out
