"""``shared_db_replica_lag_seconds`` on the Patroni cluster's streaming standby, configured as the
read replica: it rises while the standby's replay is paused under writes on the primary, and
falls back to about 0 once replay resumes; read by a real HTTP scrape."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from bench.cluster import Cluster, Node
from shared_db import metrics
from shared_db.client import Database
from shared_db.config import load_settings
from tests.ha.test_failover import IN_RECOVERY, cluster
from tests.observability.conftest import observed
from tests.observability.test_metrics import scrape, value

__all__ = ["cluster"]  # the fixture, imported for this module's tests

LAG = "shared_db_replica_lag_seconds"
SAMPLE_EVERY = 0.25
IDLE = 3.0
SINCE_LAST_APPLIED = ("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
                      "::float8")


def _maintenance(cluster: Cluster, node: Node, on: bool) -> None:
    """Patroni's maintenance mode, once ``node``'s own Patroni has seen it."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{node.api}/config", json.dumps({"pause": on}).encode(),
        {"Content-Type": "application/json"}, method="PATCH")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.api}/patroni", timeout=5) as got:
            if bool(json.loads(got.read()).get("pause", False)) == on:
                return
        assert time.monotonic() < deadline, f"Patroni on {node.name} never saw pause={on}"
        time.sleep(0.2)


@contextmanager
def replay_paused(cluster: Cluster, standby: Node) -> Iterator[None]:
    """The standby receives WAL but does not apply it. Patroni resumes a paused replay on its
    next loop unless the cluster is in maintenance mode, so that is entered first; both are
    undone whatever the test did, so the cluster's later tests find a standby that keeps up."""
    _maintenance(cluster, standby, True)
    try:
        with psycopg.connect(standby.url(), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            try:
                yield
            finally:
                conn.execute("SELECT pg_wal_replay_resume()")
    finally:
        _maintenance(cluster, standby, False)


async def _lag(db: Database, until: float, wanted: str, seconds: float = 30) -> float:
    """The scraped lag once it is above (``wanted`` "above") or below ``until``."""
    assert db.metrics is not None
    deadline = time.monotonic() + seconds
    while True:
        samples = scrape(db.metrics.registry)
        lag = value(samples, LAG, database="app") if any(s.name == LAG for s in samples) else -1
        if (lag > until) if wanted == "above" else (0 <= lag < until):
            return lag
        assert time.monotonic() < deadline, f"replica lag {lag}, never {wanted} {until}"
        await asyncio.sleep(SAMPLE_EVERY)


async def test_replica_lag_rises_while_replay_is_paused_and_falls_when_it_resumes(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    leader = cluster.wait_healthy()
    standby = next(n for n in cluster.nodes if n != leader)
    monkeypatch.setattr(metrics, "REPLICA_EVERY", SAMPLE_EVERY)
    settings = load_settings({"DATABASE_URL": cluster.url("app"),
                              "DATABASE_READ_URL": standby.url("app")})
    async with Database(observed(settings, metrics=True)) as db:
        for _ in range(20):
            async with db.executor("auth") as ex:
                assert await ex.scalar(IN_RECOVERY, {}) is True  # reads are the standby's
        # A URL that asks no role keeps its standby connections: none was replaced per read.
        assert db._replicas["auth"].get_stats()["connections_num"] <= 5
        await db.config.set("lag.before", 0)
        caught_up = await _lag(db, 0.5, "below")
        await asyncio.sleep(IDLE)  # the standby's last applied commit is older by this much
        with replay_paused(cluster, standby):
            paused_at = time.monotonic()
            for i in range(8):  # the primary keeps writing; the standby receives, applies none
                await db.config.set("lag.during", i)
                await asyncio.sleep(0.5)
            during = await _lag(db, 3.0, "above")
            waited = time.monotonic() - paused_at
            async with db.transaction() as tx:  # the primary's read
                assert await tx.config.value("lag.during") == 7
            assert await db.config.value("lag.during") is None  # the standby's: none applied
            # the lag is the time since the first write the standby has not applied, not
            # since the last commit it did apply (before an idle spell, that is older)
            assert during <= waited + 2 * SAMPLE_EVERY + 0.5, (during, waited)
            with psycopg.connect(standby.url("app")) as conn:
                stale = conn.execute(SINCE_LAST_APPLIED).fetchone()
            assert stale is not None and stale[0] > during + IDLE / 2, (stale, during)
        resumed = await _lag(db, 0.5, "below")
        assert await db.config.value("lag.during") == 7  # the standby's read, applied now
    with capsys.disabled():
        print(f"\nreplica lag: {caught_up:.2f} s caught up, {during:.2f} s after "
              f"{waited:.1f} s paused under writes (the last applied commit {stale[0]:.2f} s "
              f"old), {resumed:.2f} s after resume")


def test_lag_counts_from_the_last_sample_replay_has_passed_not_from_an_old_commit() -> None:
    # rows of REPLICA_LAG: in recovery, now, LSN received, LSN replayed, last commit replayed at
    lag = metrics.ReplicaLag()
    assert lag.update((True, 100.0, 10.0, 10.0, 40.0)) == 0  # caught up, if idle for a minute
    assert lag.update((True, 101.0, 20.0, 10.0, 40.0)) == 1  # current as of 100, not of 40
    assert lag.update((True, 105.0, 30.0, 20.0, 100.5)) == 4  # replay passed 101's WAL
    assert lag.update((True, 106.0, 30.0, 30.0, 104.0)) == 0
    first = metrics.ReplicaLag()  # behind at its first sample: the last commit is all it has
    assert first.update((True, 50.0, 20.0, 10.0, 40.0)) == 10
    assert metrics.ReplicaLag().update((True, 50.0, None, 10.0, 45.0)) == 5  # not streaming
    assert metrics.ReplicaLag().update((False, 50.0, None, None, None)) == 0  # a primary
