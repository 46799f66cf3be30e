"""The results as a table on the terminal (and as Markdown for bench/README.md)."""

from __future__ import annotations

from typing import Any

CONTENDERS = ("shared_db", "psycopg", "asyncpg", "sqlalchemy_orm")


def markdown(doc: dict[str, Any]) -> str:
    lines = ["| workload | " + " | ".join(f"{c}: p50 µs or ops/s (x psycopg)"
                                        for c in CONTENDERS) + " |",
             "|---" * (len(CONTENDERS) + 1) + "|"]
    for key, per in doc["workloads"].items():
        cells = []
        for name in CONTENDERS:
            stats = per[name]
            if key.startswith("C"):
                share = stats["ops_s"] / per["psycopg"]["ops_s"]
                cells.append(f"{stats['ops_s']:.0f} ops/s ({share:.2f}x)")
            else:
                ratio = doc["p50_ratio_to_psycopg"][key][name]
                cells.append(f"{stats['p50_us']:.0f} ({ratio:.2f}x)")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {'met' if ok else '**missed**'}: {name}" for name, ok in doc["targets"].items()]
    return "\n".join(lines)


def print_report(doc: dict[str, Any]) -> None:
    if doc["environment"]["plan"]["rounds"] == 1:
        print("(--quick: a smoke run; these numbers are too few to compare, run without --quick)")
    print(markdown(doc))
