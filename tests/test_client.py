"""The client: transactions, isolation, retries, timeouts, the pool, prepared statements."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import bindparam, func, select

from shared_db.client import Database, Transaction
from shared_db.config import load_settings
from shared_db.errors import (
    DataAccessError,
    PoolTimeoutError,
    QueryTimeoutError,
    RetryExhaustedError,
    ValidationError,
)
from shared_db.sql import Query
from tests.conftest import DbFixture, Stores
from tests.factories import PASSWORD_HASH

SLEEP = Query.build("test.sleep", select(func.pg_sleep(bindparam("seconds"))))


def _client(db: DbFixture, query: str) -> Database:
    return Database(load_settings({"DATABASE_URL": f"{db.url}?{query}"}))


async def test_transaction_commits_or_rolls_back(db: Database, stores: Stores) -> None:
    async with db.transaction() as tx:
        await tx.config.set("a", 1)
        await tx.config.set("b", 2)
    assert [c.key for c in await db.config.list()] == ["a", "b"]
    before = stores.digest()
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as tx:
            await tx.config.set("c", 3)
            assert (await tx.config.get("c")) is not None  # visible inside
            1 / 0  # noqa: B018
    assert stores.digest() == before


async def _write_skew(db: Database, retries: int) -> list[object]:
    """Two serializable transactions that each read the whole table, then insert."""
    both_read = asyncio.Barrier(2)
    attempts = {"a": 0, "b": 0}

    async def work(name: str, tx: Transaction) -> int:
        attempts[name] += 1
        count = len(await tx.config.list())
        if attempts[name] == 1:
            await asyncio.wait_for(both_read.wait(), 5)
        await tx.config.set(f"{name}-{attempts[name]}", count)
        return attempts[name]

    return await asyncio.gather(
        db.run(lambda tx: work("a", tx), retries=retries, isolation="serializable"),
        db.run(lambda tx: work("b", tx), retries=retries, isolation="serializable"),
        return_exceptions=True)


async def test_serialization_failures_are_retried(db: Database) -> None:
    results = await _write_skew(db, retries=3)
    assert sorted(results) == [1, 2]  # one committed first time, the other on its retry
    assert len(await db.config.list()) == 2


async def test_retries_exhausted(db: Database) -> None:
    results = await _write_skew(db, retries=0)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], RetryExhaustedError)
    assert "SerializationFailure" in str(failures[0])
    assert len(await db.config.list()) == 1


async def test_statement_timeout(db: Database) -> None:
    with pytest.raises(QueryTimeoutError, match="statement timeout"):
        async with db.transaction(statement_timeout=0.1) as tx, tx.executor("auth") as ex:
            await ex.scalar(SLEEP, {"seconds": 2})


async def test_a_timeout_given_keeps_the_other_the_session_has(migrated_db: DbFixture) -> None:
    with psycopg.connect(migrated_db.url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{migrated_db.connection.database}" '
                     "SET lock_timeout = '3s'")
        conn.execute(f'ALTER DATABASE "{migrated_db.connection.database}" '
                     "SET statement_timeout = '30s'")
    show = "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
    async with _client(migrated_db, "connection_limit=1") as db:
        for kwargs, expected in (({"statement_timeout": 10}, ("10s", "3s")),
                                 ({"lock_timeout": 1}, ("30s", "1s")),
                                 ({}, ("30s", "3s"))):
            async with db.transaction(**kwargs) as tx, tx.executor("auth") as ex:
                cursor = await ex.connection.execute(show)
                assert await cursor.fetchone() == expected, kwargs  # never "0": no limit


async def test_lock_timeout(db: Database) -> None:
    await db.config.set("locked", 1)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with db.transaction() as tx:
            await tx.config.set("locked", 2)
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    try:
        with pytest.raises(QueryTimeoutError, match="lock timeout"):
            async with db.transaction(lock_timeout=0.1) as tx:
                await tx.config.set("locked", 3)
    finally:
        release.set()
        await holder
    assert await db.config.value("locked") == 2


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"isolation": "chaos"}, "isolation"), ({"statement_timeout": -1}, "statement_timeout"),
    ({"lock_timeout": "1s"}, "lock_timeout")])
async def test_bad_transaction_options(db: Database, kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        db.transaction(**kwargs)
    assert caught.value.field == field
    with pytest.raises(ValidationError, match="retries"):
        await db.run(lambda tx: asyncio.sleep(0), retries=-1)


async def test_pool_timeout_names_the_limit(migrated_db: DbFixture) -> None:
    async with _client(migrated_db, "connection_limit=1&pool_timeout=0.2") as db:
        async with db.transaction() as tx:
            await tx.config.list()  # holds the only connection
            with pytest.raises(PoolTimeoutError, match="pool_timeout"):
                await db.config.list()
        assert await db.config.list() == []  # the connection came back


async def test_prepared_statements_unless_pgbouncer(migrated_db: DbFixture) -> None:
    for query, expect_prepared in (("connection_limit=1", True),
                                   ("connection_limit=1&pgbouncer=true", False)):
        async with _client(migrated_db, query) as db:
            async with db.transaction() as tx:
                for _ in range(3):
                    await tx.config.list()
                async with tx.executor("admin") as ex:
                    cursor = await ex.connection.execute(
                        "SELECT count(*) FROM pg_prepared_statements")
                    (prepared,) = await cursor.fetchone()
            assert (prepared > 0) is expect_prepared, query


async def test_connections_probe_a_silent_peer_unless_the_url_says_otherwise(
        migrated_db: DbFixture) -> None:
    defaults = {"keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3",
                "tcp_user_timeout": "60000"}
    for query, expected in (
            ("connection_limit=1", defaults),
            ("connection_limit=1&keepalives_idle=7",
             {"keepalives_idle": "7", "tcp_user_timeout": "60000"}),
            ("connection_limit=1&keepalives=0&tcp_user_timeout=5000",
             {"keepalives": "0", "tcp_user_timeout": "5000"})):
        async with _client(migrated_db, query) as db, db.transaction() as tx, \
                tx.executor("auth") as ex:
            given = ex.connection.info.get_parameters()
            found = {k: v for k, v in given.items()
                     if k.startswith("keepalives") or k == "tcp_user_timeout"}
            assert found == expected, query


async def test_schema_parameter_sets_the_search_path(migrated_db: DbFixture) -> None:
    async with (_client(migrated_db, "schema=nowhere") as db, db.transaction() as tx,
                tx.executor("auth") as ex):
        cursor = await ex.connection.execute("SHOW search_path")
        assert await cursor.fetchone() == ("nowhere",)


async def test_orm_sessions_see_what_repositories_wrote(db: Database) -> None:
    from sqlalchemy import select as orm_select

    from shared_db.models import User, UserProfile

    user = await db.users.create(email="orm@example.com", password_hash=PASSWORD_HASH, name="O",
                                 role="ADMIN")
    async with db.session("auth") as session:
        loaded = await session.get(User, user.id)
        assert loaded is not None and loaded.email == "orm@example.com"
    async with db.session("profile") as session, session.begin():  # per service: its own DB
        session.add(UserProfile(user_id=user.id, bio="via the ORM"))
    profile = await db.profiles.get(user.id)
    assert profile is not None and profile.bio == "via the ORM"
    async with db.session() as session:
        emails = (await session.scalars(orm_select(User.email))).all()
    assert emails == ["orm@example.com"]


def _backends(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()").fetchone()[0])


async def test_many_waiters_time_out_and_leak_nothing(migrated_db: DbFixture) -> None:
    async with _client(migrated_db, "connection_limit=2&pool_timeout=0.2") as db:
        hold = asyncio.Event()

        async def holder() -> None:
            async with db.transaction() as tx:
                await tx.config.list()
                await hold.wait()

        holders = [asyncio.create_task(holder()) for _ in range(2)]
        await asyncio.sleep(0.1)
        results = await asyncio.gather(*(db.config.list() for _ in range(6)),
                                       return_exceptions=True)
        assert all(isinstance(r, PoolTimeoutError) for r in results)
        hold.set()
        await asyncio.gather(*holders)
        assert await db.config.list() == []
        assert _backends(migrated_db.url) <= 2
    assert _backends(migrated_db.url) == 0


PID = Query.build("test.pid", select(func.pg_backend_pid()))


async def test_calls_one_at_a_time_reuse_the_connection_returned_last(
        migrated_db: DbFixture) -> None:
    async with _client(migrated_db, "connection_limit=4") as db:
        async def hold() -> int:
            async with db.transaction() as tx, tx.executor("auth") as ex:
                await ex.scalar(SLEEP, {"seconds": 0.2})  # all four out at once
                return int(await ex.scalar(PID, {}))

        opened = set(await asyncio.gather(*(hold() for _ in range(4))))
        assert len(opened) == 4 and db.pool("auth").get_stats()["pool_available"] == 4

        async def pid() -> int:
            async with db.executor("auth") as ex:
                return int(await ex.scalar(PID, {}))

        # A FIFO pool would hand out each of the four idle connections in turn.
        seen = [await pid() for _ in range(8)]
        assert len(set(seen)) == 1 and seen[0] in opened


async def test_a_label_the_python_enum_lacks_is_a_shared_db_error(migrated_db: DbFixture) -> None:
    async with _client(migrated_db, "connection_limit=1") as db:
        user = await db.users.create(email="enum@example.com", password_hash=PASSWORD_HASH,
                                     name="E", role="CUSTOMER")
        payment = await db.payments.create(user.id, "1.00", type="payment")
        assert (await db.payments.get(payment.id)) == payment  # read back as the enums
        with psycopg.connect(migrated_db.url, autocommit=True) as conn:
            conn.execute("""ALTER TYPE "PaymentStatus" ADD VALUE 'disputed'""")
            conn.execute("UPDATE payments SET status = 'disputed' WHERE id = %s", (payment.id,))
        with pytest.raises(DataAccessError, match="disputed"):
            await db.payments.get(payment.id)


async def test_open_twice_is_one_set_of_pools(stores: Stores) -> None:
    db = Database(stores.settings())
    try:
        await asyncio.gather(db.open(), db.open())
        first = db.pool("auth")
        assert await db.open() is db and db.pool("auth") is first
    finally:
        await db.close()
    assert first.closed


async def test_run_refuses_work_that_is_not_async(db: Database, stores: Stores) -> None:
    before = stores.digest()
    with pytest.raises(ValidationError, match="work: must be an async function"):
        await db.run(lambda tx: 1)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValidationError, match="work: must be an async function"):
        await db.run(lambda tx: 1, idempotency_key="sync", service="admin")  # type: ignore[arg-type,return-value]
    assert stores.digest() == before
