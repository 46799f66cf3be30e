"""The embedded PostgreSQL: started once, reused, stopped; untouched when DATABASE_URL is set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from shared_db import devserver
from shared_db.cli import main
from shared_db.errors import ConfigError


@pytest.fixture
def home(tmp_path: Path):
    folder = tmp_path / "embedded"
    yield folder
    devserver.stop(folder)


def test_start_reuse_stop(home: Path) -> None:
    url = devserver.start(home)
    assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/shared_db")
    assert devserver.start(home) == url  # reused, same port
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
    assert int(version) >= 180000 and "pg_stat_statements" in preload
    assert devserver.stop(home) is True
    assert devserver.running_port(home) is None
    assert devserver.stop(home) is False
    assert devserver.start(home) == url  # data and port kept across restarts


def test_commands_say_they_use_it_on_stderr(home: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SHARED_DB_HOME", str(home))
    assert main(["migrate", "deploy"]) == 0
    captured = capsys.readouterr()
    assert "Using the embedded PostgreSQL" in captured.err and str(home) in captured.err
    assert "10 migration(s) applied." in captured.out
    assert main(["db", "stop"]) == 0
    assert "Stopped." in capsys.readouterr().out


def test_database_url_set_means_no_embedded_server(home: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SHARED_DB_HOME": str(home),
           "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/app"}
    result = subprocess.run([sys.executable, "-m", "shared_db", "db", "start"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "DATABASE_URL: is set" in result.stderr
    subprocess.run([sys.executable, "-m", "shared_db", "migrate", "status"], env=env,
                   capture_output=True, timeout=60, check=False)
    assert not (home / "pgdata").exists()


@pytest.mark.parametrize("command", [["db", "url"], ["db", "stop"], ["up"]])
def test_a_home_that_cannot_be_a_folder_is_one_line_exit_2(
        tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("")
    # Below a file nothing can run, so there is nothing to stop: only start is refused there.
    below = [] if command == ["db", "stop"] else [tmp_path / "afile" / "below"]
    for home in (tmp_path / "afile", *below):
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("SHARED_DB_HOME", str(home))
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: SHARED_DB_HOME: must be a folder") and err.count("\n") == 1


def test_a_stale_pid_file_naming_another_live_process(home: Path) -> None:
    # After a container restart the pid file's process id may be any process's: taken for
    # the server, start failed with a traceback and stop signalled that process.
    url = devserver.start(home)
    assert devserver.stop(home) is True
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pid_file = home / "pgdata" / "postmaster.pid"
        port = url.rsplit(":", 1)[1].split("/")[0]
        pid_file.write_text(f"{bystander.pid}\n{home / 'pgdata'}\n0\n{port}\n/tmp\n127.0.0.1\n"
                            "0 0\nready\n")
        assert devserver.running_port(home) is None
        assert devserver.stop(home) is False  # nothing signalled
        assert bystander.poll() is None
        assert devserver.start(home) == url
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        bystander.kill()
        bystander.wait()


def test_a_port_file_that_is_no_port_is_chosen_again(home: Path) -> None:
    home.mkdir(parents=True)
    for garbage in ("abc", "99999999", "0", "-5", "1"):  # 1: only root may listen there
        (home / "port").write_text(garbage)
        url = devserver.start(home)
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        with psycopg.connect(url) as conn:  # a commit it acknowledged survives a kill
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert devserver.stop(home) is True


def test_a_home_with_a_double_quote_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r'SHARED_DB_HOME: must not contain a double quote'):
        devserver.start(tmp_path / 'say "hi"')
