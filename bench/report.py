"""The results as Markdown tables, for the terminal and for bench/README.md.

``python -m bench.report A.json [B.json]`` renders one results document, or two side by side
(say a pinned and an unpinned run): each cell then reads ``A / B``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.ratios import order

CONTENDERS = ("psycopg_sync", "psycopg_async", "asyncpg", "shared_db", "sqlalchemy_orm")


def label(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    return ("pinned" if env.get("pinned") else "unpinned") + f", {env['date']}"


def _measure(key: str, stats: dict[str, float]) -> str:
    return f"{stats['ops_s']:.0f} ops/s" if key.startswith("C") else f"{stats['p50_us']:.0f}"


def _cell(doc: dict[str, Any], key: str, name: str) -> str:
    stats = doc["workloads"].get(key, {}).get(name)
    if stats is None:
        return "-"
    return f"{_measure(key, stats)} ({doc['ratio_to_fastest_raw'][key][name]:.2f}x)"


def markdown(doc: dict[str, Any]) -> str:
    """One run: p50 µs (ops/s for C1/C2) per contender with its ratio to the fastest raw."""
    names = [c for c in CONTENDERS if any(c in per for per in doc["workloads"].values())]
    lines = [f"Run: {label(doc)}. Cells: p50 µs (C1/C2: ops/s) and, in brackets, the ratio to "
             "the fastest raw contender of the round (C1/C2: throughput ratio).", "",
             "| workload | fastest raw | " + " | ".join(names) + " |",
             "|---" * (len(names) + 2) + "|"]
    for key in doc["workloads"]:
        cells = [_cell(doc, key, name) for name in names]
        lines.append(f"| {key} | {doc['fastest_raw'].get(key, '-')} | " + " | ".join(cells)
                     + " |")
    lines.append("")
    for name, check in doc["targets"].items():
        verdict = "met" if check["met"] else "**missed**"
        lines.append(f"- {verdict}: {name} ({check['against']}: {check['value']:.2f}x)")
    return "\n".join(lines)


def side_by_side(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Two runs: every ratio to the fastest raw as ``A / B``, the fastest raw named in each."""
    names = [c for c in CONTENDERS
             if any(c in per for doc in (a, b) for per in doc["workloads"].values())]
    keys = sorted({*a["workloads"], *b["workloads"]}, key=order)

    def ratio(doc: dict[str, Any], key: str, name: str) -> str:
        value = doc["ratio_to_fastest_raw"].get(key, {}).get(name)
        return "-" if value is None else f"{value:.2f}x"

    def fastest(doc: dict[str, Any], key: str) -> str:
        name = doc["fastest_raw"].get(key)
        if name is None:
            return "-"
        return f"{name} {_measure(key, doc['workloads'][key][name])}"

    lines = [f"A: {label(a)}; B: {label(b)}. Cells: the ratio to the fastest raw contender of "
             "the round, A / B (C1/C2: throughput ratio); the fastest raw with its p50 µs "
             "(C1/C2: ops/s).", "",
             "| workload | fastest raw A / B | " + " | ".join(names) + " |",
             "|---" * (len(names) + 2) + "|"]
    for key in keys:
        cells = [f"{ratio(a, key, n)} / {ratio(b, key, n)}" for n in names]
        lines.append(f"| {key} | {fastest(a, key)} / {fastest(b, key)} | " + " | ".join(cells)
                     + " |")
    lines.append("")
    for name in dict.fromkeys([*a["targets"], *b["targets"]]):
        verdicts = []
        for tag, doc in (("A", a), ("B", b)):
            check = doc["targets"].get(name)
            verdicts.append(f"{tag} not run" if check is None else
                            f"{tag} {'met' if check['met'] else '**missed**'} "
                            f"({check['value']:.2f}x)")
        lines.append(f"- {name}: " + ", ".join(verdicts))
    return "\n".join(lines)


def print_report(doc: dict[str, Any]) -> None:
    if doc["environment"]["plan"]["rounds"] == 1:
        print("(--quick: a smoke run; these numbers are too few to compare, run without --quick)")
    print(markdown(doc))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("runs", type=Path, nargs="+", help="one or two --json results files")
    args = parser.parse_args()
    if len(args.runs) > 2:
        parser.error("give one results file, or two to compare")
    docs = [json.loads(path.read_text()) for path in args.runs]
    print(markdown(docs[0]) if len(docs) == 1 else side_by_side(*docs))


if __name__ == "__main__":
    main()
