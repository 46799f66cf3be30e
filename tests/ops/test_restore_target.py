"""What a restore finds in its target and leaves there: a restore killed while psql is being fed
commits nothing, a schema holding objects but no tables is not empty, and table names or server
settings that a checksum could misread."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from shared_db.errors import ConfigError, ConfirmationRequired
from shared_db.ops import backup as backups
from shared_db.ops.restore import restore
from tests.conftest import DbFixture
from tests.ops.test_backup import _state, filled  # noqa: F401 (a fixture)

# Dies by SIGTERM (no cleanup of its own, as a deploy pipeline's timeout kills it) once psql has
# been fed two chunks of the script: the first reading of the script is the check, the second
# the feed.
KILLED_WHILE_FEEDING = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from shared_db.config import load_settings
    from shared_db.ops import restore as restores
    from shared_db.ops.targets import resolve_targets

    real, readings = restores._scanned, []

    def scanned(*args):
        readings.append(1)
        block = real(*args)
        if len(readings) == 1:
            return block
        class Killing:
            def __enter__(self):
                chunks = block.__enter__()
                def fed():
                    for n, chunk in enumerate(chunks):
                        if n == 2:
                            os.kill(os.getpid(), signal.SIGTERM)
                        yield chunk
                return fed()
            def __exit__(self, *exc):
                return block.__exit__(*exc)
        return Killing()

    restores._scanned = scanned
    target = resolve_targets(load_settings({"DATABASE_URL": sys.argv[1]}))[0]
    restores.restore(target.connection, Path(sys.argv[2]), force=True)
""")


def _sessions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND pid <> pg_backend_pid()").fetchone()
    return int(found[0]) if found else 0


def test_a_restore_killed_while_feeding_psql_commits_nothing(
        filled: DbFixture, migrated_db: DbFixture, tmp_path: Path) -> None:  # noqa: F811
    with psycopg.connect(filled.url, autocommit=True) as conn:  # several 1 MiB chunks
        conn.execute("CREATE TABLE public.bulk AS SELECT n, repeat(md5(n::text), 4) AS pad "
                     "FROM generate_series(1, 60000) n")
    result = backups.backup(filled.target(), tmp_path, "sql.gz")
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.kept (id int)")
        conn.execute("INSERT INTO public.kept VALUES (1)")
    before = _state(migrated_db)
    done = subprocess.run([sys.executable, "-c", KILLED_WHILE_FEEDING, migrated_db.url,
                           str(result.file)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == -15, done.stderr  # killed, as meant
    deadline = time.monotonic() + 60  # psql, orphaned, reads the end of its input and exits
    while _sessions(migrated_db.url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sessions(migrated_db.url) == 0
    assert _state(migrated_db) == before  # not half of the backup: none of it


def test_a_schema_with_objects_but_no_tables_is_not_empty(
        filled: DbFixture, empty_db: DbFixture, tmp_path: Path) -> None:  # noqa: F811
    result = backups.backup(filled.target(), tmp_path, "custom")
    with psycopg.connect(empty_db.url, autocommit=True) as conn:
        conn.execute("CREATE MATERIALIZED VIEW public.totals AS SELECT 1 AS n")
        conn.execute("CREATE SEQUENCE public.numbers")
        conn.execute("CREATE FUNCTION public.answer() RETURNS int LANGUAGE sql RETURN 42")
    with pytest.raises(ConfirmationRequired, match=r"not empty \(3 other objects: function "
                       r"answer\(\), materialized view totals, sequence numbers\); "
                       r"pass --force"):
        restore(empty_db.connection, result.file)
    with psycopg.connect(empty_db.url) as conn:
        assert conn.execute("SELECT public.answer(), (SELECT n FROM public.totals)").fetchone() \
            == (42, 1)
    restore(empty_db.connection, result.file, force=True)
    assert _state(empty_db) == _state(filled)


@pytest.mark.parametrize("fmt", ["custom", "sql.gz"])
def test_any_table_name_and_bytea_output_round_trip(
        filled: DbFixture, empty_db: DbFixture, tmp_path: Path, fmt: str) -> None:  # noqa: F811
    with psycopg.connect(filled.url, autocommit=True) as conn:
        for name in ("Weird Name", "café", "a,b", 'quo"te', "it's"):
            conn.execute(f'CREATE TABLE public."{name.replace(chr(34), chr(34) * 2)}" '
                         "(id int, raw bytea)")
            conn.execute(f'INSERT INTO public."{name.replace(chr(34), chr(34) * 2)}" '
                         "VALUES (1, '\\x00ff27'::bytea)")
        # Checksums read rows as text: escape output spells bytea otherwise than hex.
        conn.execute(f'ALTER DATABASE "{filled.connection.database}" SET bytea_output = escape')
        conn.execute(f'ALTER DATABASE "{empty_db.connection.database}" SET bytea_output = escape')
    result = backups.backup(filled.target(), tmp_path, fmt)  # type: ignore[arg-type]
    assert backups.verify(result, filled.connection).verified
    restore(empty_db.connection, result.file)
    assert _state(empty_db) == _state(filled)


def test_a_restore_through_pgbouncer_is_refused_before_anything_runs(
        filled: DbFixture, empty_db: DbFixture, tmp_path: Path) -> None:  # noqa: F811
    # Through transaction pooling the dump's session settings (search_path '') stayed on the
    # server connection the next client got: it found no users table.
    result = backups.backup(filled.target(), tmp_path, "custom")
    bounced = dataclasses.replace(empty_db.connection, pgbouncer=True)
    with pytest.raises(ConfigError, match="restore needs a direct connection"):
        restore(bounced, result.file, force=True)
    with psycopg.connect(empty_db.url) as conn:
        assert conn.execute("SELECT to_regclass('users')").fetchone() == (None,)
