"""``python -m bench [--quick] [--pin] [--json FILE] [--plot DIR] [--only W1,..]``: one run, every
contender, every ratio against the fastest raw driver of the round."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import data, pin, ratios, runner
from bench.orm import SqlAlchemyOrm
from bench.ours import SharedDb
from bench.raw import Asyncpg, PsycopgAsync
from bench.raw_sync import PsycopgSync
from shared_db import devserver
from shared_db.config import load_settings
from shared_db.ops import migrate
from shared_db.ops.scratch import create_database, drop_database
from shared_db.ops.targets import resolve_targets
from shared_db.url import parse_database_url

BENCH_DB = "shared_db_bench"
DEPTH = 50_000
POOL = 8
Rounds = dict[str, dict[str, list[dict[str, float]]]]


def _embedded_home() -> Path | None:
    """Where the embedded server lives, or None when ``DATABASE_URL`` names another server."""
    if os.environ.get("DATABASE_URL"):
        return None
    return Path(os.environ.get("SHARED_DB_HOME") or ".shared-db")


def _server_url() -> str:
    home = _embedded_home()
    return devserver.start(home) if home else os.environ["DATABASE_URL"]


async def _settle(result: Any) -> Any:
    """A sync contender's result as it is, an async one's awaited (outside the timed path)."""
    return await result if inspect.isawaitable(result) else result


def prepare(server: str) -> tuple[str, data.DataSet, dict[str, Any]]:
    conn = parse_database_url(server)
    drop_database(conn, BENCH_DB)
    bench = create_database(conn, BENCH_DB)
    settings = load_settings({"DATABASE_URL": bench.libpq_url()})
    migrate.deploy(resolve_targets(settings)[0], settings.migrations_dir)
    dataset = data.load(bench.libpq_url())
    with psycopg.connect(bench.libpq_url()) as db:
        sample = dataset.user_ids[:: max(1, len(dataset.user_ids) // 1000)]
        after = {u: db.execute("SELECT created_at, id FROM payments WHERE user_id = %s ORDER BY "
                               "created_at DESC, id DESC OFFSET 1 LIMIT 1", (u,)).fetchone()
                 for u in sample}
        deep = db.execute("SELECT created_at, id FROM payments ORDER BY created_at DESC, id DESC "
                          "OFFSET %s LIMIT 1", (DEPTH - 1,)).fetchone()
        server_version = db.execute("SHOW server_version").fetchone()[0]
    inputs = {"ids": sample, "after": [after[u] for u in sample], "deep": deep,
              "server_version": server_version}
    return bench.libpq_url(), dataset, inputs


def workloads(c: Any, inputs: dict[str, Any], dataset: data.DataSet, tag: str) -> dict[str, Any]:
    ids, n = inputs["ids"], len(inputs["ids"])
    cursors = [c.cursor(at) for at in inputs["after"]]
    deep = c.cursor(inputs["deep"])
    serial = itertools.count()
    return {
        "W1": lambda i: c.w1(ids[i % n]),
        "W2": lambda i: c.w2(ids[i % n]),
        "W3": lambda i: c.w3(ids[i % n], cursors[i % n]),
        "W4_first": lambda i: c.w4_first(),
        "W4_keyset": lambda i: c.w4_keyset(deep),
        "W4_offset": lambda i: c.w4_offset(DEPTH),
        "W5": lambda i: c.w5(ids[i % n]),
        "W6": lambda i: c.w6(f"w6-{tag}-{next(serial)}@bench.test", dataset.password_hash),
        "W8": lambda i: c.w8("CUSTOMER"),
    }


async def batch_load(c: Any, url: str, plan: runner.Plan, password_hash: str,
                     tag: str) -> dict[str, float]:
    """W7: create_many of ``batch_rows`` new users with skip-duplicates; rows removed after."""
    latencies = []
    for op in range(plan.batch_ops):
        rows = [(f"w7-{tag}-{op}-{i}@bench.test", password_hash, f"Bulk {i}", "CUSTOMER")
                for i in range(plan.batch_rows)]
        t0 = time.perf_counter_ns()
        inserted = c.w7(rows) if getattr(c, "blocking", False) else await c.w7(rows)
        latencies.append(time.perf_counter_ns() - t0)
        assert inserted == len(rows), (c.name, inserted)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
            await db.execute("DELETE FROM users WHERE email LIKE 'w7-%'")
    return runner.summarise(latencies, sum(latencies) / 1e9)


def contenders() -> list[Any]:
    """Raw drivers first: sync psycopg, async psycopg, asyncpg; then shared-db and the ORM."""
    return [PsycopgSync(), PsycopgAsync(), Asyncpg(), SharedDb(), SqlAlchemyOrm()]


async def _chunk(box: runner.Interleaved, c: Any, op: Any, first: int, count: int,
                 workers: int, threads: runner.Threads) -> None:
    if getattr(c, "blocking", False):
        box.blocking_chunk(c.name, op, first, count, threads if workers > 1 else None)
    else:
        await box.chunk(c.name, op, first, count, workers)


async def run(plan: runner.Plan, url: str, dataset: data.DataSet, inputs: dict[str, Any],
              only: set[str] | None = None) -> Rounds:
    """Every round's summary per workload and contender."""
    field = contenders()
    for contender in field:
        await contender.open(url, POOL)
    threads = runner.Threads(plan.workers)
    ops = {c.name: workloads(c, inputs, dataset, c.name) for c in field}
    keys = [k for k in [*ops["shared_db"], "C1", "C2"] if only is None or k in only]
    rounds: Rounds = {}
    try:
        for key in keys:
            print(f"{key}: {plan.rounds} round(s)", file=sys.stderr, flush=True)
            base = {"C1": "W1", "C2": "W2"}.get(key, key)
            slow = key in ("W8", "W4_offset")  # tens of milliseconds each
            total = plan.concurrent_ops if key in ("C1", "C2") else (
                plan.report_ops if slow else plan.ops)
            size = max(1, min(plan.chunk if not slow else 2, total))
            workers = plan.workers if key in ("C1", "C2") else 1
            for op in (ops[c.name][base] for c in field):
                for i in range(2 if slow else plan.warmup):
                    await _settle(op(i))
            for r in range(plan.rounds):
                box = runner.Interleaved([c.name for c in field])
                for n, first in enumerate(range(0, total, size)):
                    turn = (n + r) % len(field)
                    for c in field[turn:] + field[:turn]:
                        await _chunk(box, c, ops[c.name][base], 10_000 * r + first + 1_000,
                                     min(size, total - first), workers, threads)
                for name, result in box.results().items():
                    rounds.setdefault(key, {}).setdefault(name, []).append(result)
        print("W7: batch loads", file=sys.stderr, flush=True)
        for r in range(plan.rounds if only is None or "W7" in only else 0):
            turn = r % len(field)
            for c in field[turn:] + field[:turn]:
                result = await batch_load(c, url, plan, dataset.password_hash, f"{c.name}-{r}")
                rounds.setdefault("W7", {}).setdefault(c.name, []).append(result)
    finally:
        threads.close()
        for contender in field:
            await contender.close()
    return {key: rounds[key] for key in sorted(rounds, key=ratios.order)}


def summarise(rounds: Rounds) -> dict[str, Any]:
    """The results document's measurements: medians of rounds, ratios, fastest raw, targets."""
    results = {key: {name: runner.median_of_rounds(rs) for name, rs in per.items()}
               for key, per in rounds.items()}
    compared = ratios.compare(rounds)
    return {"workloads": results, **compared, "targets": ratios.targets(results, compared),
            "rounds": rounds}


def environment(inputs: dict[str, Any], dataset: data.DataSet, plan: runner.Plan) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    return {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
            "cores": os.cpu_count(), "server_version": inputs["server_version"],
            "seed_rows": dataset.rows, "seed_seconds": round(dataset.seed_seconds, 2),
            "plan": plan.__dict__, "pool": POOL, "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                      time.gmtime())}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI smoke run (< 2 minutes)")
    parser.add_argument("--pin", action="store_true",
                        help="server on CPU 0, benchmark on CPU 1 (needs the server here)")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument("--plot", type=Path, help="write PNG charts into this folder")
    parser.add_argument("--only", help="comma-separated workloads to run (W1,W6,C1,...)")
    args = parser.parse_args()
    plan = runner.QUICK if args.quick else runner.FULL
    server = _server_url()
    # Refused before seeding, so a --pin that cannot work costs no time.
    target = pin.locate(server, _embedded_home()) if args.pin else None
    url, dataset, inputs = prepare(server)
    print(f"seeded {dataset.rows} rows in {dataset.seed_seconds:.2f}s", file=sys.stderr)
    only = set(args.only.split(",")) if args.only else None
    try:
        with pin.pinned(target) as pinning:
            rounds = asyncio.run(run(plan, url, dataset, inputs, only))
    finally:
        drop_database(parse_database_url(server), BENCH_DB)
    env = environment(inputs, dataset, plan)
    doc = {**summarise(rounds), "environment": {**env, **pinning, "only": sorted(only or [])}}
    from bench.report import print_report

    print_report(doc)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if args.plot:
        from bench.plot import plot

        plot(doc, args.plot)


if __name__ == "__main__":
    main()
