"""PNG bar charts: p50 latency per workload and contender (log scale), and throughput."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import CONTENDERS


def plot(doc: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for title, keys, stat, log, name in (
            ("p50 latency (µs, log scale)", [k for k in doc["workloads"] if k.startswith("W")],
             "p50_us", True, "latency.png"),
            ("throughput with 8 clients, pool of 8 (ops/s)",
             [k for k in doc["workloads"] if k.startswith("C")], "ops_s", False,
             "throughput.png")):
        fig, ax = plt.subplots(figsize=(11, 4.5))
        width = 0.8 / len(CONTENDERS)
        for i, contender in enumerate(CONTENDERS):
            values = [doc["workloads"][k][contender][stat] for k in keys]
            ax.bar([x + i * width for x in range(len(keys))], values, width, label=contender)
        ax.set_xticks([x + width * (len(CONTENDERS) - 1) / 2 for x in range(len(keys))], keys)
        if log:
            ax.set_yscale("log")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        path = folder / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)
    return made
