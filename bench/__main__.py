"""``python -m bench [--quick] [--json FILE] [--plot DIR]``: one run, every contender, ratios."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench import data, runner
from bench.orm import SqlAlchemyOrm
from bench.ours import SharedDb
from bench.raw import Asyncpg, Psycopg
from shared_db import devserver
from shared_db.config import load_settings
from shared_db.ops import migrate
from shared_db.ops.scratch import create_database, drop_database
from shared_db.ops.targets import resolve_targets
from shared_db.url import parse_database_url

BENCH_DB = "shared_db_bench"
DEPTH = 50_000
POOL = 8
TARGETS = {"W1": 1.3, "W2": 1.3, "W3": 1.3, "W5": 1.3, "W6": 1.3, "W8": 1.3}


def _server_url() -> str:
    return os.environ.get("DATABASE_URL") or devserver.start(
        Path(os.environ.get("SHARED_DB_HOME") or ".shared-db"))


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
        inserted = await c.w7(rows)
        latencies.append(time.perf_counter_ns() - t0)
        assert inserted == len(rows), (c.name, inserted)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
            await db.execute("DELETE FROM users WHERE email LIKE 'w7-%'")
    return runner.summarise(latencies, sum(latencies) / 1e9)


async def run(plan: runner.Plan, url: str, dataset: data.DataSet, inputs: dict[str, Any],
              only: set[str] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    contenders = [SharedDb(), Psycopg(), Asyncpg(), SqlAlchemyOrm()]
    for contender in contenders:
        await contender.open(url, POOL)
    ops = {c.name: workloads(c, inputs, dataset, c.name) for c in contenders}
    keys = [k for k in [*ops["shared_db"], "C1", "C2"] if only is None or k in only]
    rounds: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        for key in keys:
            print(f"{key}: {plan.rounds} round(s)", file=sys.stderr, flush=True)
            base = {"C1": "W1", "C2": "W2"}.get(key, key)
            slow = key in ("W8", "W4_offset")  # tens of milliseconds each
            total = plan.concurrent_ops if key in ("C1", "C2") else (
                plan.report_ops if slow else plan.ops)
            size = max(1, min(plan.chunk if not slow else 2, total))
            workers = plan.workers if key in ("C1", "C2") else 1
            for op in (ops[c.name][base] for c in contenders):
                for i in range(2 if slow else plan.warmup):
                    await op(i)
            for r in range(plan.rounds):
                box = runner.Interleaved([c.name for c in contenders])
                for n, first in enumerate(range(0, total, size)):
                    turn = (n + r) % len(contenders)
                    for c in contenders[turn:] + contenders[:turn]:
                        await box.chunk(c.name, ops[c.name][base], 10_000 * r + first + 1_000,
                                        min(size, total - first), workers)
                for name, result in box.results().items():
                    rounds.setdefault(key, {}).setdefault(name, []).append(result)
        print("W7: batch loads", file=sys.stderr, flush=True)
        for r in range(plan.rounds if only is None or "W7" in only else 0):
            turn = r % len(contenders)
            for c in contenders[turn:] + contenders[:turn]:
                result = await batch_load(c, url, plan, dataset.password_hash, f"{c.name}-{r}")
                rounds.setdefault("W7", {}).setdefault(c.name, []).append(result)
    finally:
        for contender in contenders:
            await contender.close()
    return {key: {name: runner.median_of_rounds(rs) for name, rs in per.items()}
            for key, per in sorted(rounds.items())}


def verdicts(results: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    ours, raw = "shared_db", "psycopg"
    ratios = {key: {name: round(s["p50_us"] / per[raw]["p50_us"], 2) for name, s in per.items()}
              for key, per in results.items()}
    checks = {f"{k} p50 <= {v}x psycopg": ratios[k][ours] <= v for k, v in TARGETS.items()}
    checks["W7 <= 1.5x COPY load (psycopg)"] = ratios["W7"][ours] <= 1.5
    keyset = results["W4_keyset"][ours]["p50_us"] / results["W4_first"][ours]["p50_us"]
    checks[f"W4 keyset <= 1.5x first page ({keyset:.2f}x)"] = keyset <= 1.5
    for key in ("C1", "C2"):
        share = results[key][ours]["ops_s"] / results[key][raw]["ops_s"]
        checks[f"{key} throughput >= 0.8x psycopg ({share:.2f}x)"] = share >= 0.8
    return {"p50_ratio_to_psycopg": ratios, "targets": checks}


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
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument("--plot", type=Path, help="write PNG charts into this folder")
    parser.add_argument("--only", help="comma-separated workloads to run (W1,W6,C1,...)")
    args = parser.parse_args()
    plan = runner.QUICK if args.quick else runner.FULL
    server = _server_url()
    url, dataset, inputs = prepare(server)
    print(f"seeded {dataset.rows} rows in {dataset.seed_seconds:.2f}s", file=sys.stderr)
    try:
        only = set(args.only.split(",")) if args.only else None
        results = asyncio.run(run(plan, url, dataset, inputs, only))
    finally:
        drop_database(parse_database_url(server), BENCH_DB)
    if only:
        print(json.dumps(results, indent=1))
        return
    doc = {"workloads": results, **verdicts(results),
           "environment": environment(inputs, dataset, plan)}
    from bench.report import print_report

    print_report(doc)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    if args.plot:
        from bench.plot import plot

        plot(doc, args.plot)


if __name__ == "__main__":
    main()
