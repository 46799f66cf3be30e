"""Query logging, slow-query detection and the N+1 detector, on real statements."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import bindparam, func, select

from shared_db.client import Database
from shared_db.config import load_settings
from shared_db.errors import ConfigError, QueryTimeoutError, ValidationError
from shared_db.observe import NPlusOneError, QueryLogSettings, detect_n_plus_one
from shared_db.sql import Query, QueryEvent
from tests.conftest import DbFixture
from tests.factories import PASSWORD_HASH

SLEEP = Query.build("test.sleep", select(func.pg_sleep(bindparam("seconds"))))


def _db(db: DbFixture, **log: object) -> Database:
    return Database(db.settings(), log=QueryLogSettings(**log))  # type: ignore[arg-type]


async def test_development_logs_queries_and_hides_params(migrated_db: DbFixture,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="shared_db.query")
    async with _db(migrated_db) as db:
        await db.users.get_by_email("secret-person@example.com")
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Query:")]
    assert "FROM users" in record.getMessage() and "Duration:" in record.getMessage()
    assert "secret-person" not in caplog.text
    caplog.clear()
    async with _db(migrated_db, log_params=True) as db:
        await db.users.get_by_email("shown-person@example.com")
    (record,) = [r for r in caplog.records if r.getMessage().startswith("Query:")]
    assert "Params: {'email': 'shown-person@example.com'}" in record.getMessage()


async def test_slow_queries_warn_and_call_back(migrated_db: DbFixture,
                                               caplog: pytest.LogCaptureFixture) -> None:
    seen: list[QueryEvent] = []
    async with _db(migrated_db, slow_ms=100, log_params=True) as db:
        db.query_log.on_slow(seen.append)
        async with db.transaction() as tx, tx.executor("auth") as ex:
            await ex.scalar(SLEEP, {"seconds": 0.15})
            await ex.scalar(SLEEP, {"seconds": 0})
    assert [e.name for e in seen] == ["test.sleep"]
    assert seen[0].duration_ms >= 150 and seen[0].params == {"seconds": 0.15}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Slow query detected" in warnings[0].getMessage()
    assert "pg_sleep" in warnings[0].getMessage() and "0.15" in warnings[0].getMessage()


async def test_a_failing_callback_never_fails_the_write_it_watched(
        migrated_db: DbFixture, caplog: pytest.LogCaptureFixture) -> None:
    async with _db(migrated_db, slow_ms=1) as db:
        with pytest.raises(ValidationError, match="callback: must be callable, got int"):
            db.query_log.on_slow(5)  # type: ignore[arg-type]

        def broken(event: QueryEvent) -> None:
            raise RuntimeError("the callback's own bug")
        db.query_log.on_slow(broken)
        async with db.transaction() as tx, tx.executor("auth") as ex:
            await ex.scalar(SLEEP, {"seconds": 0.01})  # slow: the callback runs, and fails
            user = await tx.users.create(email="watched@example.com", name="W",
                                         role="CUSTOMER", password_hash=PASSWORD_HASH)
        assert await db.users.get(user.id) == user  # committed, reported as done
    failures = [r for r in caplog.records if "callback" in r.getMessage()]
    assert failures and all(r.levelno == logging.ERROR and r.exc_info for r in failures)
    assert "the callback's own bug" in caplog.text


async def test_production_logs_errors_only(migrated_db: DbFixture,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="shared_db.query")
    settings = load_settings({"DATABASE_URL": migrated_db.url, "SHARED_DB_ENV": "production"})
    async with Database(settings) as db:
        await db.config.list()
        with pytest.raises(QueryTimeoutError, match="statement timeout"):
            async with db.transaction(statement_timeout=0.05) as tx, tx.executor("auth") as ex:
                await ex.scalar(SLEEP, {"seconds": 1})
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert "query failed" in caplog.records[0].getMessage()


async def test_a_slow_statement_that_then_failed_is_slow_too(migrated_db: DbFixture) -> None:
    seen: list[QueryEvent] = []
    async with _db(migrated_db, slow_ms=20) as db:
        db.query_log.on_slow(seen.append)
        with pytest.raises(QueryTimeoutError):
            async with db.transaction(statement_timeout=0.05) as tx, tx.executor("auth") as ex:
                await ex.scalar(SLEEP, {"seconds": 1})
    assert [(e.name, e.sqlstate) for e in seen] == [("test.sleep", "57014")]


async def test_n_plus_one_in_a_transaction_warns(migrated_db: DbFixture,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    async with _db(migrated_db, n_plus_one=5) as db:
        ids = [(await db.users.create(email=f"n{i}@example.com", password_hash=PASSWORD_HASH,
                                      name="N", role="CUSTOMER")).id for i in range(6)]
        async with db.transaction() as tx:
            for user_id in ids:  # the N+1 pattern: one query per user
                await tx.users.get(user_id)
        async with db.transaction() as tx:
            await tx.users.eager_many(ids)  # the fix: a fixed number of statements
    messages = [r.getMessage() for r in caplog.records if "N+1" in r.getMessage()]
    assert messages == ["possible N+1: users.get ran 5 times in one unit of work; load the rows "
                        "together (e.g. users.eager_many)"]


async def test_strict_mode_raises_for_tests(migrated_db: DbFixture) -> None:
    async with _db(migrated_db, n_plus_one=3, strict=True) as db:
        with detect_n_plus_one(), pytest.raises(NPlusOneError, match=r"config\.get ran 3 times"):
            for key in ("a", "b", "c", "d"):
                await db.config.get(key)
        for key in ("a", "b", "c", "d"):  # outside any unit of work nothing is counted
            await db.config.get(key)


def test_settings_from_the_environment() -> None:
    settings = load_settings({"SHARED_DB_SLOW_QUERY_MS": "250", "SHARED_DB_LOG_PARAMS": "true",
                              "SHARED_DB_N_PLUS_ONE": "4", "SHARED_DB_N_PLUS_ONE_STRICT": "1"})
    log = settings.query_log()
    assert (log.slow_ms, log.log_params, log.n_plus_one, log.strict) == (250, True, 4, True)
    for name, value in (("SHARED_DB_SLOW_QUERY_MS", "-1"), ("SHARED_DB_ENV", "staging"),
                        ("SHARED_DB_LOG_PARAMS", "maybe")):
        with pytest.raises(ConfigError, match=name):
            load_settings({name: value})
    for word, meant in (("on", True), ("OFF", False), ("Yes", True), ("0", False)):
        assert load_settings({"SHARED_DB_LOG_PARAMS": word}).query_log().log_params is meant
        assert load_settings({"SHARED_DB_TRACING": word}).telemetry.tracing is meant


async def test_n_plus_one_of_writes_suggests_writing_together(
        migrated_db: DbFixture, caplog: pytest.LogCaptureFixture) -> None:
    async with _db(migrated_db, n_plus_one=3) as db, db.transaction() as tx:
        for i in range(3):
            await tx.config.set(f"w{i}", i)
    messages = [r.getMessage() for r in caplog.records if "N+1" in r.getMessage()]
    by_query = {m.split()[2]: m for m in messages}
    assert "write the rows together" in by_query["config.set"], messages
    assert "load the rows together" in by_query["config.old_value"], messages
