"""A migrations folder that is a mount of its own, as a volume or bind mount in a container:
read-only, the commands that add migrations refuse it by name before any work; writable,
``--from-drift`` moves its files in although its hidden copy is on another mount."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from shared_db.config import PACKAGE_MIGRATIONS
from tests.cli.test_migrate_cli import cli
from tests.conftest import DbFixture


def _mount(source: Path, target: Path, read_only: bool) -> None:
    target.mkdir()
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
    if read_only:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)


@pytest.fixture(params=[True, False], ids=["read-only", "writable"])
def mounted(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    source = tmp_path / "source"
    shutil.copytree(PACKAGE_MIGRATIONS, source, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "volume" / "migrations"
    target.parent.mkdir()
    _mount(source, target, request.param)
    try:
        yield target, request.param
    finally:
        subprocess.run(["umount", str(target)], check=False)


def test_a_mounted_migrations_folder(migrated_db: DbFixture, mounted: tuple[Path, bool]) -> None:
    folder, read_only = mounted
    env = {**migrated_db.env(), "SHARED_DB_MIGRATIONS_DIR": str(folder)}
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    runs = [("migrate", "dev", "--from-drift", "--name", "nickname")]
    if read_only:
        runs += [("migrate", "dev", "--name", "x", "--create-only"),
                 ("migrate", "squash", "--chain", "admin", "--to", "admin:20261201000000")]
    for args in runs:
        result = cli(*args, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        if read_only:
            assert result.returncode == 2, (args, result.stderr)
            assert result.stderr.strip().splitlines()[-1].startswith(
                "error: SHARED_DB_MIGRATIONS_DIR: must be writable"), result.stderr
        else:
            assert result.returncode == 0, result.stderr
            assert list((folder / "versions" / "auth").glob("*_nickname.py"))
            assert not list((folder / "versions" / "auth").glob(".*.partial"))
