"""Whole-process start-up: ``python -m bench.startup [--runs N]``.

What a developer waits for at the prompt, so each command is timed as a whole process (interpreter
start, imports, work, exit), with ``alembic --help`` as the reference measured in the same run.
Commands take turns, in rotating order, so drift on the machine hits all of them alike; the
report gives the median of N runs. ``migrate status`` runs against a warm server: the embedded
one (started first) or ``DATABASE_URL``'s, migrated before timing; once as a developer runs it
again and again (the clean drift check remembered from the run before) and once with nothing
remembered (``SHARED_DB_CACHE_DIR`` emptied before each run: the full model comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(sys.executable).parent
HEAVY = ("psycopg_pool", "sqlalchemy.ext.asyncio")
COMMANDS = {
    "shared-db --help": [str(SCRIPTS / "shared-db"), "--help"],
    "alembic --help": [str(SCRIPTS / "alembic"), "--help"],
    "shared-db migrate status": [str(SCRIPTS / "shared-db"), "migrate", "status"],
    "shared-db migrate status (nothing remembered)": [str(SCRIPTS / "shared-db"), "migrate",
                                                      "status"],
    "import shared_db.errors": [sys.executable, "-c", "import shared_db.errors"],
    "import shared_db.records": [sys.executable, "-c", "import shared_db.records"],
}
HELP_RATIO, STATUS_SECONDS = 0.6, 0.5

# The child reports what it loaded once the CLI has exited, since --help ends in SystemExit.
_PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps([m for m in {heavy!r} if m in sorted(sys.modules)]),
                              file=sys.stderr))
{body}
"""
PROBES = {
    "import shared_db.errors": "import shared_db.errors",
    "import shared_db.records": "import shared_db.records",
    "shared-db --help": "sys.argv = ['shared-db', '--help']\nfrom shared_db.cli import run\nrun()",
}


REMEMBERED, FORGOTTEN = (Path(tempfile.mkdtemp(prefix="shared-db-cache-")) for _ in range(2))


def _run(argv: list[str], name: str = "") -> subprocess.CompletedProcess[str]:
    cache = FORGOTTEN if "nothing remembered" in name else REMEMBERED
    shutil.rmtree(FORGOTTEN / "drift", ignore_errors=True)
    env = {**os.environ, "SHARED_DB_CACHE_DIR": str(cache)}
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120,
                            env=env)
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def prepare() -> None:
    """A warm, migrated server, so ``migrate status`` times the command and not a cold start."""
    shared_db = str(SCRIPTS / "shared-db")
    if not os.environ.get("DATABASE_URL"):
        _run([shared_db, "db", "start"])
    _run([shared_db, "migrate", "deploy"])


def timings(runs: int) -> dict[str, float]:
    names = list(COMMANDS)
    for name in names:  # warm the page cache and the server's connection path
        _run(COMMANDS[name], name)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(runs):
        turn = r % len(names)
        for name in names[turn:] + names[:turn]:
            t0 = time.perf_counter()
            _run(COMMANDS[name], name)
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(s) for name, s in samples.items()}


def heavy_modules() -> dict[str, list[str]]:
    """Which of the pools and SQLAlchemy's async layer each probe loaded (none is the goal)."""
    loaded = {}
    for name, body in PROBES.items():
        result = _run([sys.executable, "-c", _PROBE.format(heavy=HEAVY, body=body)])
        loaded[name] = json.loads(result.stderr.strip().splitlines()[-1])
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="runs per command (median taken)")
    args = parser.parse_args()
    prepare()
    seconds = timings(args.runs)
    loaded = heavy_modules()
    ratio = seconds["shared-db --help"] / seconds["alembic --help"]
    print(f"median of {args.runs} runs, whole process, interleaved\n")
    print("| command | seconds |\n| --- | --- |")
    for name, value in seconds.items():
        print(f"| `{name}` | {value:.3f} |")
    print(f"\n`shared-db --help` / `alembic --help`: {ratio:.2f}x\n")
    checks = {
        f"`shared-db --help` <= {HELP_RATIO}x `alembic --help` ({ratio:.2f}x)": ratio <= HELP_RATIO,
        f"`shared-db migrate status` <= {STATUS_SECONDS} s "
        f"({seconds['shared-db migrate status']:.2f} s)":
            seconds["shared-db migrate status"] <= STATUS_SECONDS,
    }
    for name, found in loaded.items():
        what = f"loads {', '.join(found)}" if found else "loads neither"
        checks[f"`{name}` {what} ({' / '.join(HEAVY)})"] = not found
    for name, ok in checks.items():
        print(f"- {'met' if ok else '**missed**'}: {name}")


if __name__ == "__main__":
    main()
