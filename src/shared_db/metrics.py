"""Prometheus metrics of one ``Database``, on a registry of its own that the service mounts.

Statements are counted from the query hook (one more listener); pool gauges are read from
psycopg_pool's own statistics when the registry is scraped, so they cost nothing between
scrapes; the checkout wait is timed only for the pools this object watches; replica lag is
sampled in the background every ``REPLICA_EVERY`` seconds where replicas are configured.

Mount it with ``prometheus_client.make_asgi_app(db.metrics.registry)`` or
``start_http_server(port, registry=db.metrics.registry)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from shared_db import calls
from shared_db.errors_db import REFUSALS
from shared_db.histogram import LeanHistogram, Observe
from shared_db.observe import QueryLog
from shared_db.sql import QueryEvent, QueryHooks

log = logging.getLogger("shared_db.metrics")
REPLICA_EVERY = 15.0
STOP_WAIT = 5.0
SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_HISTORY = 256
# Lag is how far behind the replica's data is: the time since the oldest commit it has not yet
# replayed. A caught-up replica (all it received is replayed) has none, however old its last
# replayed commit. One that is behind cannot read that oldest commit's time; the time of the
# last commit it replayed bounds it from above but counts any idle spell before it: a replica
# paused a second after an hour's quiet would read an hour behind. So each sample also keeps
# the LSN received by then, and once replay has passed it the replica was current as of then.
REPLICA_LAG = ("SELECT pg_is_in_recovery(), extract(epoch FROM now())::float8, "
               "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::float8, "
               "pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::float8, "
               "extract(epoch FROM pg_last_xact_replay_timestamp())::float8")
Pools = dict[str, "AsyncConnectionPool[Any]"]


class ReplicaLag:
    """One replica's lag from its successive samples (server clock, LSNs as byte offsets)."""

    def __init__(self) -> None:
        self._received: deque[tuple[float, float]] = deque(maxlen=LAG_HISTORY)

    def update(self, row: Sequence[Any]) -> float:
        """The lag in seconds, from one row of ``REPLICA_LAG``."""
        recovering, now, received, replayed, replayed_at = row
        if not recovering:
            return 0.0
        if received is None:  # not streaming: the last replayed commit is all there is
            return 0.0 if replayed_at is None else max(0.0, now - replayed_at)
        if replayed >= received:
            self._received.clear()
            self._received.append((now, received))
            return 0.0
        self._received.append((now, received))
        while len(self._received) > 1 and self._received[1][1] <= replayed:
            self._received.popleft()  # only the latest sample replay has passed matters
        current_as_of = replayed_at
        first_at, first = self._received[0]
        if first <= replayed:
            current_as_of = first_at if replayed_at is None else max(first_at, replayed_at)
        return 0.0 if current_as_of is None else max(0.0, now - current_as_of)


def where(pool: AsyncConnectionPool[Any]) -> tuple[str, str]:
    """A pool's ``database`` and ``server`` labels: per service, databases of one name on
    several servers are several series. A URL of several hosts is ``host:port`` for each,
    paired as libpq pairs them (one port for all, or one per host)."""
    found = conninfo_to_dict(pool.conninfo) if isinstance(pool.conninfo, str) else {}
    hosts = str(found.get("host", "")).split(",")
    ports = str(found.get("port", "5432")).split(",")
    if len(ports) != len(hosts):
        ports = [ports[0]] * len(hosts)
    server = ",".join(f"{h}:{p or 5432}" for h, p in zip(hosts, ports, strict=True))
    return str(found.get("dbname", "")), server


class _PoolCollector(Collector):
    def __init__(self) -> None:
        self.pools: dict[tuple[str, str, str], AsyncConnectionPool[Any]] = {}

    def collect(self) -> Iterator[Metric]:
        labels = ["database", "server", "role"]
        size = GaugeMetricFamily("shared_db_pool_size", "Connections the pool holds", labels=labels)
        used = GaugeMetricFamily("shared_db_pool_in_use", "Connections lent out", labels=labels)
        idle = GaugeMetricFamily("shared_db_pool_idle", "Connections waiting in the pool",
                                 labels=labels)
        waiting = GaugeMetricFamily("shared_db_pool_waiting", "Callers waiting for a connection",
                                    labels=labels)
        maximum = GaugeMetricFamily("shared_db_pool_max", "The pool's connection limit",
                                    labels=labels)
        timeouts = CounterMetricFamily("shared_db_pool_timeouts",
                                       "Checkouts that failed (pool_timeout passed)", labels=labels)
        for key, pool in self.pools.items():
            stats = pool.get_stats()
            held, free = stats.get("pool_size", 0), stats.get("pool_available", 0)
            size.add_metric(key, held)
            used.add_metric(key, held - free)
            idle.add_metric(key, free)
            watch = calls.WAITS.get(id(pool))
            waiting.add_metric(key, stats.get("requests_waiting", 0) if watch is None
                               else watch.waiting)
            maximum.add_metric(key, stats.get("pool_max", 0))
            timeouts.add_metric(key, stats.get("requests_errors", 0))
        yield from (size, used, idle, waiting, maximum, timeouts)


class Metrics:
    """The metrics of one ``Database``; ``registry`` is what a service serves."""

    def __init__(self, hooks: QueryHooks, query_log: QueryLog,
                 registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.statement_seconds = LeanHistogram(
            "shared_db_statement_duration_seconds", "Statement duration by query and outcome",
            ["query", "outcome"], SECONDS, r)
        self.errors = Counter("shared_db_statement_errors", "Failed statements by error type",
                              ["query", "type"], registry=r)
        self.slow = Counter("shared_db_slow_queries", "Statements slower than "
                            "SHARED_DB_SLOW_QUERY_MS", ["query"], registry=r)
        self.n_plus_one = Counter("shared_db_n_plus_one_warnings", "N+1 warnings by query",
                                  ["query"], registry=r)
        self.checkout_wait = LeanHistogram(
            "shared_db_pool_checkout_wait_seconds", "Time to get a pooled connection",
            ["database", "server", "role"], SECONDS, r)
        self.retries = Counter("shared_db_transaction_retries",
                               "Transactions run again, by cause", ["cause"], registry=r)
        self.two_phase = Counter("shared_db_two_phase_commits", "Two-phase commits by outcome",
                                 ["outcome"], registry=r)
        self.in_doubt = Counter("shared_db_two_phase_in_doubt_parts", "Prepared parts left to "
                                "recovery (shared-db db recover)", registry=r)
        self.replica_lag = Gauge("shared_db_replica_lag_seconds", "Replay lag of a read replica",
                                 ["database", "server"], registry=r)
        self._pools = _PoolCollector()
        r.register(self._pools)
        self._durations: dict[tuple[str, str], Observe] = {}
        self._watch: asyncio.Task[None] | None = None
        hooks.listeners.append(self.statement)
        query_log.on_slow(lambda event: self.slow.labels(event.name).inc())
        query_log.on_n_plus_one(lambda event: self.n_plus_one.labels(event.name).inc())

    def statement(self, event: QueryEvent) -> None:
        """The query-hook listener: one observation per statement."""
        if event.error is None:
            outcome = "ok"
        else:
            refused = event.sqlstate is not None and event.sqlstate[:2] in REFUSALS
            outcome = "refused" if refused else "error"
            self.errors.labels(event.name, event.error_type or "unknown").inc()
        key = (event.name, outcome)
        observe = self._durations.get(key)
        if observe is None:
            observe = self._durations[key] = self.statement_seconds.child(*key)
        observe(event.duration_ms / 1000)

    def watch(self, primaries: Pools, replicas: Pools) -> None:
        """Report these pools (service -> pool), and sample the replicas' lag."""
        for role, pools in (("primary", primaries), ("replica", replicas)):
            for pool in pools.values():
                database, server = where(pool)
                self._pools.pools[(database, server, role)] = pool
                calls.WAITS[id(pool)] = calls.Watch(
                    self.checkout_wait.child(database, server, role))
        if replicas and self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._sample(replicas))

    def forget(self) -> None:
        """Stop watching the pools (they are closing)."""
        for pool in self._pools.pools.values():
            calls.WAITS.pop(id(pool), None)
        self._pools.pools.clear()
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    async def _sample(self, replicas: Pools) -> None:
        distinct = {id(p): p for p in replicas.values()}.values()
        lags = {id(pool): ReplicaLag() for pool in distinct}
        me = asyncio.current_task()
        while me is None or not me.cancelling():  # a cancel some await swallowed ends it too
            for pool in distinct:
                try:
                    async with pool.connection() as conn:
                        row = await (await conn.execute(REPLICA_LAG)).fetchone()
                    lag = lags[id(pool)].update(row) if row is not None else 0.0
                    self.replica_lag.labels(*where(pool)).set(lag)
                except Exception as exc:  # a replica down is the pool gauges' news, not ours
                    log.debug("replica lag not sampled: %s", exc)
            await asyncio.sleep(REPLICA_EVERY)

    async def stop(self) -> None:
        watch, self._watch = self._watch, None
        self.forget()
        if watch is not None:
            watch.cancel()
            # Bounded: a sample stuck in a connection attempt must not hold up close().
            await asyncio.wait({watch}, timeout=STOP_WAIT)
