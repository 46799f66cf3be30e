"""Health reports on a seeded database."""

from __future__ import annotations

import json
import secrets

import psycopg
import pytest

from shared_db.cli import main
from shared_db.ops import monitoring
from shared_db.ops.seeding import run_seed
from tests.conftest import DbFixture


@pytest.fixture
def seeded(migrated_db: DbFixture) -> DbFixture:
    run_seed(migrated_db.settings())
    # Scans on a connection that then ends, so its statistics are flushed.
    with psycopg.connect(migrated_db.url) as conn:
        for email in ("admin@test.com", "vendor@test.com"):
            conn.execute("SELECT id FROM users WHERE email = %s", (email,)).fetchall()
    return migrated_db


def test_reports_on_a_seeded_database(seeded: DbFixture) -> None:
    stats = monitoring.collect(seeded.target())
    sizes = {t.table: t for t in stats.tables}
    assert set(sizes) >= {"users", "payments", "user_profiles", "audit_logs"}
    assert sizes["users"].bytes > 0 and sizes["users"].size.endswith(("kB", "bytes", "MB"))
    usage = {i.index: i for i in stats.indexes}
    assert usage["users_email_key"].scans + usage["users_email_idx"].scans >= 2
    assert usage["users_email_key"].unique and not usage["users_role_idx"].unique
    assert "users_role_idx" in stats.unused_indexes
    assert "users_email_key" not in stats.unused_indexes
    redundant = {(d.index, d.covered_by, d.reason) for d in stats.duplicate_indexes}
    assert ("users_email_idx", "users_email_key", "same columns") in redundant
    assert ("payments_user_id_idx", "payments_user_id_status_idx",
            "leading columns of") in redundant
    assert not any(d.index == "payments_user_id_status_idx" for d in stats.duplicate_indexes)


def test_top_statements_when_the_extension_is_there(seeded: DbFixture) -> None:
    with psycopg.connect(seeded.url) as conn:
        preloaded = "pg_stat_statements" in conn.execute(
            "SHOW shared_preload_libraries").fetchone()[0]
    stats = monitoring.collect(seeded.target(), top=5)
    if preloaded:
        with psycopg.connect(seeded.url) as conn:
            conn.execute("SELECT count(*) FROM payment_reports").fetchall()
        stats = monitoring.collect(seeded.target(), top=50)
        assert stats.statements_note is None
        assert any("payment_reports" in s.query for s in stats.top_statements)
        assert all(s.calls >= 1 for s in stats.top_statements)
    else:
        assert stats.top_statements == []
        assert "shared_preload_libraries" in (stats.statements_note or "")


def test_redundant_index_rules() -> None:
    rows = [("t", "a_key", ["1"], "1", True, None, None),
            ("t", "a_idx", ["1"], "1", False, None, None),
            ("t", "ab_idx", ["1", "2"], "1 1", False, None, None),
            ("t", "a_partial", ["1"], "1", False, None, "(x > 0)"),
            ("u", "a_idx", ["1"], "1", False, None, None)]
    found = {(r.table, r.index, r.covered_by) for r in monitoring.redundant_indexes(rows)}
    assert found == {("t", "a_idx", "a_key")}


def test_stats_json(seeded: DbFixture, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", seeded.url)
    assert main(["stats", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (target,) = doc["targets"]
    assert {t["table"] for t in target["tables"]} >= {"users", "payments"}
    assert {"indexes", "unused_indexes", "duplicate_indexes", "top_statements"} <= set(target)
    assert main(["stats"]) == 0
    assert "Redundant indexes" in capsys.readouterr().out


def test_stats_as_a_role_without_rights(seeded: DbFixture, monkeypatch, capsys) -> None:
    name = f"stats_reader_{secrets.token_hex(4)}"
    with psycopg.connect(seeded.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
    try:
        url = seeded.url.replace("postgres@", f"{name}@", 1)
        monkeypatch.setenv("DATABASE_URL", url)
        # Not a superuser: shared_preload_libraries is not readable, the report still is.
        assert main(["stats", "--json"]) == 0
        (report,) = json.loads(capsys.readouterr().out)["targets"]
        assert report["tables"] and (report["top_statements"] or report["statements_note"])
        with psycopg.connect(seeded.url, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON SCHEMA public FROM PUBLIC, {name}")
        code = main(["stats"])
        captured = capsys.readouterr()
        assert code != 0 and "Traceback" not in captured.err + captured.out
        assert captured.err.startswith("error: ") and "permission denied" in captured.err
        assert len(captured.err.strip().splitlines()) == 1
    finally:
        with psycopg.connect(seeded.url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {name}")
            conn.execute(f"DROP ROLE {name}")
