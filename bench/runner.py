"""Timing: contenders interleaved in small chunks, repeated rounds, the median of rounds.

Machines here are shared and noisy (two cores shared by the server and the client), and the
noise drifts over minutes. So within each round a workload's operations are cut into chunks and
the contenders take turns chunk by chunk, in rotating order: every contender sees the same
conditions. Each operation is timed with ``perf_counter_ns``; the report is about ratios measured
in the same run, not absolutes.

A blocking (sync) contender runs its single-connection chunks on the harness's own thread, and
its concurrent chunks on ``workers`` OS threads kept alive across chunks, so its ops/s under 8
clients compare with 8 tasks of an async contender on one event loop.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

Op = Callable[[int], Awaitable[Any]]
BlockingOp = Callable[[int], Any]


@dataclass(frozen=True)
class Plan:
    ops: int
    warmup: int
    rounds: int
    batch_ops: int
    batch_rows: int
    report_ops: int
    concurrent_ops: int
    chunk: int
    workers: int = 8


QUICK = Plan(ops=150, warmup=20, rounds=1, batch_ops=1, batch_rows=2_000, report_ops=6,
             concurrent_ops=400, chunk=50)
FULL = Plan(ops=2_000, warmup=200, rounds=3, batch_ops=3, batch_rows=10_000, report_ops=60,
            concurrent_ops=8_000, chunk=100)


def summarise(latencies_ns: Sequence[int], wall_s: float) -> dict[str, float]:
    ordered = sorted(latencies_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50_us": statistics.median(ordered) / 1000, "p99_us": p99 / 1000,
            "mean_us": statistics.fmean(ordered) / 1000, "ops_s": len(ordered) / wall_s}


def median_of_rounds(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in rounds), 2) for key in rounds[0]}


class Interleaved:
    """Latencies and busy time per contender, collected chunk by chunk."""

    def __init__(self, names: Sequence[str]) -> None:
        self.latencies: dict[str, list[int]] = {n: [] for n in names}
        self.wall: dict[str, float] = dict.fromkeys(names, 0.0)

    async def chunk(self, name: str, op: Op, first: int, count: int, workers: int = 1) -> None:
        todo = iter(range(first, first + count))
        seen = self.latencies[name]

        async def worker() -> None:
            for i in todo:
                t0 = time.perf_counter_ns()
                await op(i)
                seen.append(time.perf_counter_ns() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        self.wall[name] += time.perf_counter() - started

    def blocking_chunk(self, name: str, op: BlockingOp, first: int, count: int,
                       threads: Threads | None = None) -> None:
        """Time a sync contender's chunk: inline, or spread over ``threads`` when given."""
        if threads is None:
            started = time.perf_counter()
            self.latencies[name].extend(_timed(op, iter(range(first, first + count))))
            self.wall[name] += time.perf_counter() - started
            return
        started = time.perf_counter()
        per_thread = threads.run(op, range(first, first + count))
        self.wall[name] += time.perf_counter() - started
        for seen in per_thread:
            self.latencies[name].extend(seen)

    def results(self) -> dict[str, dict[str, float]]:
        return {n: summarise(lat, self.wall[n]) for n, lat in self.latencies.items()}


def _timed(op: BlockingOp, todo: Iterator[int]) -> list[int]:
    seen = []
    for i in todo:
        t0 = time.perf_counter_ns()
        op(i)
        seen.append(time.perf_counter_ns() - t0)
    return seen


class Threads:
    """``workers`` OS threads, all started before the first timed chunk so that thread creation
    never lands inside a measurement."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="bench")
        # An executor reuses an idle thread rather than start another; a barrier that needs
        # every worker at once forces all of them into being.
        barrier = threading.Barrier(workers)
        for job in [self.executor.submit(barrier.wait) for _ in range(workers)]:
            job.result()

    def run(self, op: BlockingOp, indices: range) -> list[list[int]]:
        """Run ``op`` over ``indices`` on every thread, each taking the next index as it frees
        up (as the async workers do), each timing its own operations."""
        todo = iter(indices)
        lock = threading.Lock()

        def take() -> Iterator[int]:
            while True:
                with lock:
                    i = next(todo, None)
                if i is None:
                    return
                yield i

        jobs = [self.executor.submit(_timed, op, take()) for _ in range(self.workers)]
        return [job.result() for job in jobs]

    def close(self) -> None:
        self.executor.shutdown()
