"""A database error no command translated (a role refused the tables a command reads) is one
line naming the refusal, never a traceback."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared_db.cli import main
from tests.conftest import DbFixture
from tests.ops.test_doctor import _as
from tests.ops.test_doctor import login_role as login_role


@pytest.mark.parametrize("args", [["migrate", "status"], ["migrate", "deploy"],
                                  ["migrate", "deploy", "--dry-run"], ["migrate", "down"]])
def test_a_role_refused_the_version_tables_is_one_line(
        migrated_db: DbFixture, login_role: Callable[[str], str], args: list[str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", _as(migrated_db, login_role("limited")))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: InsufficientPrivilege: permission denied for table")
    assert "run as its owner" in err and len(err.strip().splitlines()) == 1
