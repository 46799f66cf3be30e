"""A database password never shows: not in command output, errors, reports or manifests."""

from __future__ import annotations

import json
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
