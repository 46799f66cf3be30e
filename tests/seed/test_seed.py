"""The guide's seed data, written once however often the seed runs."""

from __future__ import annotations

import json
from pathlib import Path

import bcrypt
import psycopg
import pytest

from shared_db.cli import main
from shared_db.errors import ConfigError
from shared_db.ops.seeding import run_seed
from shared_db.seed import load_users
from tests.conftest import DbFixture

GUIDE_USERS = {
    "admin@test.com": ("admin123", "Admin User", "ADMIN"),
    "customer@test.com": ("customer123", "Customer User", "CUSTOMER"),
    "vendor@test.com": ("vendor123", "Vendor User", "VENDOR"),
}


def _rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT u.email, u.password_hash, u.name, u.role::text, u.email_verified, "
            "u.created_at, p.id FROM users u JOIN user_profiles p ON p.user_id = u.id "
            "ORDER BY u.email").fetchall()


def test_seed_writes_the_guide_users_with_profiles(migrated_db: DbFixture) -> None:
    report = run_seed(migrated_db.settings())
    assert sorted(report.users_created) == sorted(GUIDE_USERS)
    assert report.profiles_created == 3
    rows = _rows(migrated_db.url)
    assert len(rows) == 3
    for email, password_hash, name, role, verified, _created, _profile in rows:
        password, expected_name, expected_role = GUIDE_USERS[email]
        assert (name, role, verified) == (expected_name, expected_role, True)
        assert password_hash.startswith("$2b$10$")  # bcrypt, cost 10
        assert bcrypt.checkpw(password.encode(), password_hash.encode())
        assert not bcrypt.checkpw(b"wrong", password_hash.encode())


def test_second_run_changes_nothing_and_says_so(migrated_db: DbFixture, monkeypatch,
                                                capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    assert main(["db", "seed"]) == 0
    assert "Seeded 3 user(s)" in capsys.readouterr().out
    first = _rows(migrated_db.url)
    assert main(["db", "seed"]) == 0
    assert "Nothing to seed: 3 user(s)" in capsys.readouterr().out
    assert _rows(migrated_db.url) == first


def test_missing_profile_is_completed(migrated_db: DbFixture) -> None:
    run_seed(migrated_db.settings())
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute("DELETE FROM user_profiles WHERE user_id = "
                     "(SELECT id FROM users WHERE email = 'vendor@test.com')")
    report = run_seed(migrated_db.settings())
    assert report.users_created == [] and report.profiles_created == 1
    assert len(_rows(migrated_db.url)) == 3


def test_bad_fixture_is_rejected_before_writing(migrated_db: DbFixture, tmp_path: Path) -> None:
    users = load_users()
    users[1]["role"] = "SUPERUSER"
    (tmp_path / "users.json").write_text(json.dumps(users))
    with pytest.raises(ConfigError, match=r"users.json\[1\].role: must be one of ADMIN"):
        run_seed(migrated_db.settings(), tmp_path)
    assert _rows(migrated_db.url) == []


def test_two_seeds_at_once_write_the_users_once(migrated_db: DbFixture) -> None:
    import asyncio

    from shared_db.client import Database
    from shared_db.seed import seed

    async def both() -> list:
        async with Database(migrated_db.settings()) as one, \
                Database(migrated_db.settings()) as two:
            return await asyncio.gather(seed(one), seed(two))

    first, second = asyncio.run(both())
    assert sorted(first.users_created + second.users_created) == sorted(GUIDE_USERS)
    assert sorted(first.users_existing + second.users_existing) == sorted(GUIDE_USERS)
    assert len(_rows(migrated_db.url)) == 3


def test_seeding_a_database_that_is_not_migrated_says_what_to_run(
        empty_db: DbFixture, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_db.url)
    assert main(["db", "seed"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: cannot seed: ") and "shared-db migrate deploy" in err
    assert len(err.strip().splitlines()) == 1


def test_a_strict_n_plus_one_detector_does_not_refuse_the_seed(
        migrated_db: DbFixture, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_db.url)
    monkeypatch.setenv("SHARED_DB_N_PLUS_ONE", "2")
    monkeypatch.setenv("SHARED_DB_N_PLUS_ONE_STRICT", "true")
    assert main(["db", "seed"]) == 0, capsys.readouterr().err
    assert len(_rows(migrated_db.url)) == 3


def test_a_service_database_left_unmigrated_is_named_before_anything_is_written(
        private_stores, monkeypatch, capsys) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SHARED_DB_TOPOLOGY", "per-service")
    for service, url in private_stores.urls.items():
        monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", url)
    with psycopg.connect(private_stores.urls["profile"], autocommit=True) as conn:
        conn.execute("DROP TABLE user_profiles")
    assert main(["db", "seed"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: cannot seed: the profile service's table user_profiles")
    assert len(err.strip().splitlines()) == 1
    with psycopg.connect(private_stores.urls["auth"]) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
