"""Ratios against the fastest raw driver, and the targets they are held to.

The baseline is not one fixed driver: sync psycopg, async psycopg and asyncpg each win some
workloads, and on a noisy two-core machine the winner can change from round to round. So in every
round each workload's ratios are taken against the raw contender that was fastest in that round
(lowest p50; highest ops/s for C1/C2), and the report gives the median of those per-round ratios.
The raw contender named as fastest is the one with the best median ratio, i.e. the one closest to
(or at) 1.00.
"""

from __future__ import annotations

import statistics
from typing import Any

RAW = ("psycopg_sync", "psycopg_async", "asyncpg")
OURS = "shared_db"
THROUGHPUT = ("C1", "C2")
SINGLE = ("W1", "W2", "W3", "W4_first", "W4_keyset", "W5", "W6", "W8")
LATENCY_LIMIT = 1.3  # single-connection workloads and W7, x the fastest raw p50
THROUGHPUT_FLOOR = 2.0  # C1 and C2, x the fastest raw ops/s
KEYSET_LIMIT = 1.5  # W4 keyset page at depth against the first page

RULE = ("per round, p50 / the fastest raw contender's p50 (C1/C2: ops/s / the fastest raw "
        "contender's ops/s); median over rounds. Raw contenders: " + ", ".join(RAW))

Rounds = dict[str, dict[str, list[dict[str, float]]]]


def order(key: str) -> tuple[bool, str]:
    """W1..W8 in order, then the concurrent workloads."""
    return key.startswith("C"), key


def _ratio(stats: dict[str, float], best: dict[str, float], throughput: bool) -> float:
    if throughput:
        return stats["ops_s"] / best["ops_s"]
    return stats["p50_us"] / best["p50_us"]


def compare(rounds: Rounds) -> dict[str, Any]:
    """Per workload: the fastest raw contender in each round, and every contender's median ratio
    to it."""
    fastest: dict[str, str] = {}
    by_round: dict[str, list[str]] = {}
    ratios: dict[str, dict[str, float]] = {}
    for key, per in rounds.items():
        throughput = key in THROUGHPUT
        raw = [name for name in RAW if name in per]
        if not raw:
            continue
        each: dict[str, list[float]] = {name: [] for name in per}
        winners = []
        for r in range(min(len(results) for results in per.values())):
            if throughput:
                best = max(raw, key=lambda name: per[name][r]["ops_s"])
            else:
                best = min(raw, key=lambda name: per[name][r]["p50_us"])
            winners.append(best)
            for name, results in per.items():
                each[name].append(_ratio(results[r], per[best][r], throughput))
        ratios[key] = {name: round(statistics.median(rs), 2) for name, rs in each.items()}
        pick = max if throughput else min
        fastest[key] = pick(raw, key=lambda name: statistics.median(each[name]))
        by_round[key] = winners
    return {"fastest_raw": fastest, "fastest_raw_by_round": by_round,
            "ratio_to_fastest_raw": ratios, "ratio_rule": RULE}


def targets(results: dict[str, dict[str, dict[str, float]]],
            compared: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The targets for shared-db, on whichever workloads ran: met or missed, never an
    assertion (timings on a shared machine are evidence, not a test). Keyed by the target alone,
    so that a pinned and an unpinned run line up."""
    ratios, fastest = compared["ratio_to_fastest_raw"], compared["fastest_raw"]
    checks: dict[str, dict[str, Any]] = {}

    def check(name: str, value: float, met: bool, against: str) -> None:
        checks[name] = {"met": met, "value": round(value, 2), "against": against}

    for key in (*SINGLE, "W7"):
        if OURS in ratios.get(key, {}):
            what = "time <= {}x fastest raw COPY load" if key == "W7" else "p50 <= {}x fastest raw"
            value = ratios[key][OURS]
            check(f"{key} {what.format(LATENCY_LIMIT)}", value, value <= LATENCY_LIMIT,
                  fastest[key])
    if all(OURS in results.get(k, {}) for k in ("W4_keyset", "W4_first")):
        value = results["W4_keyset"][OURS]["p50_us"] / results["W4_first"][OURS]["p50_us"]
        check(f"W4 keyset <= {KEYSET_LIMIT}x first page", value, value <= KEYSET_LIMIT,
              "W4_first")
    for key in THROUGHPUT:
        if OURS in ratios.get(key, {}):
            value = ratios[key][OURS]
            check(f"{key} throughput >= {THROUGHPUT_FLOOR:g}x fastest raw", value,
                  value >= THROUGHPUT_FLOOR, fastest[key])
    return checks
