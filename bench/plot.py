"""PNG bar charts: p50 latency per workload and contender (log scale), and throughput; each
workload labelled with the raw contender its ratios are taken against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import CONTENDERS, label


def plot(doc: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    # A pinned and an unpinned run can share the folder (bench/ holds both for the README).
    suffix = "-pinned" if doc["environment"].get("pinned") else ""
    names = [c for c in CONTENDERS if any(c in per for per in doc["workloads"].values())]
    made = []
    for title, keys, stat, log, name in (
            ("p50 latency (µs, log scale)", [k for k in doc["workloads"] if k.startswith("W")],
             "p50_us", True, "latency.png"),
            ("throughput with 8 clients, pool of 8 (ops/s)",
             [k for k in doc["workloads"] if k.startswith("C")], "ops_s", False,
             "throughput.png")):
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(12, 4.8))
        width = 0.8 / len(names)
        for i, contender in enumerate(names):
            values = [doc["workloads"][k].get(contender, {}).get(stat, 0) for k in keys]
            ax.bar([x + i * width for x in range(len(keys))], values, width, label=contender)
        ticks = [f"{k}\nvs {doc['fastest_raw'].get(k, '-')}" for k in keys]
        ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(keys))], ticks,
                      fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.set_title(f"{title}; {label(doc)}; under each workload, its fastest raw contender")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / name.replace(".png", f"{suffix}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made
