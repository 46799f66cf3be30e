"""``--pin``: the server on one CPU, the benchmark on another.

On a two-core machine a round trip costs about 21 µs when client and server share a CPU and about
64 µs across CPUs, and the scheduler decides which, so unpinned single-connection figures swing
between the two. Pinned, every contender pays the cross-CPU price on every call, and the run says
so. Affinity is inherited at fork, so setting the postmaster's before the pools open covers every
backend started afterwards; the backends alive already are set one by one. The benchmark's own
threads are set the same way (a thread's affinity is its own; threads started later inherit it).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


class PinRefused(SystemExit):
    def __init__(self, why: str) -> None:
        super().__init__(f"--pin refused: {why}")


@dataclass(frozen=True)
class Server:
    postmaster: int
    found_by: str


def _stat(pid: int) -> tuple[str, int]:
    """(command name, parent pid) of a local process, from ``/proc/<pid>/stat``."""
    text = Path(f"/proc/{pid}/stat").read_text()
    name = text[text.index("(") + 1:text.rindex(")")]
    return name, int(text[text.rindex(")") + 2:].split()[1])


def _is_postgres(name: str) -> bool:
    return name.startswith(("postgres", "postmaster"))


def _confirm_same(conn: psycopg.Connection[Any], backend: int, postmaster: int) -> bool:
    """Whether the local process ``backend`` is the one serving ``conn``, not a namesake in
    another machine's or container's pid space: the data directory is the postmaster's working
    directory, or else the backend's process title names this connection's client port."""
    data_dir = None
    with contextlib.suppress(psycopg.Error):
        data_dir = conn.execute("SHOW data_directory").fetchone()  # superusers and monitors
    if data_dir:
        with contextlib.suppress(OSError):
            return os.path.realpath(f"/proc/{postmaster}/cwd") == os.path.realpath(data_dir[0])
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        with sock:
            port = sock.getsockname()[1] if sock.family != socket.AF_UNIX else None
        title = Path(f"/proc/{backend}/cmdline").read_bytes().decode(errors="replace")
        return f"({port})" in title if port else "[local]" in title
    return False


def locate(url: str, embedded_home: Path | None) -> Server:
    """The postmaster of the server at ``url``, refused with a reason unless it is a process on
    this machine whose affinity this process may set."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        backend = row[0]
        try:
            name, postmaster = _stat(backend)
        except (OSError, ValueError, IndexError):
            raise PinRefused(f"the server's backend (pid {backend}) is not a process on this "
                             "machine; --pin needs the server here") from None
        found_by = f"parent of backend {backend} (/proc/{backend}/stat)"
        if embedded_home is not None:
            pid_file = embedded_home.resolve() / "pgdata" / "postmaster.pid"
            try:
                recorded = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                raise PinRefused(f"cannot read the embedded server's {pid_file}") from None
            if recorded != postmaster:
                raise PinRefused(f"{pid_file} names pid {recorded}, but the backend's parent "
                                 f"is {postmaster}")
            found_by = str(pid_file)
        elif not (_is_postgres(name) and _is_postgres(_stat(postmaster)[0])
                  and _confirm_same(conn, backend, postmaster)):
            raise PinRefused(f"cannot confirm that local pid {backend} ({name}) serves this "
                             "connection; the server seems not to be on this machine")
    try:
        os.sched_setaffinity(postmaster, os.sched_getaffinity(postmaster))
    except PermissionError:
        raise PinRefused(f"not permitted to set the affinity of the postmaster (pid "
                         f"{postmaster}); run as root or as the server's user") from None
    return Server(postmaster, found_by)


def _tasks(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    return []


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if _stat(int(entry))[1] == parent:
                    found.append(int(entry))
    return found


def _set(pids: list[int], cpus: set[int]) -> int:
    """Set every thread of ``pids`` to ``cpus``; how many were set (a backend may exit)."""
    done = 0
    for pid in pids:
        for task in _tasks(pid):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(task, cpus)
                done += 1
    return done


@contextlib.contextmanager
def pinned(server: Server | None) -> Iterator[dict[str, Any]]:
    """Pin for the duration of the block; yields the record the results document keeps.

    ``None`` (no ``--pin``) yields an unpinned record. Fewer than two usable CPUs degrades to an
    unpinned run with a message, since there is nothing to separate."""
    if server is None:
        yield {"pinned": False}
        return
    mine = os.sched_getaffinity(0)
    if len(mine) < 2:
        why = f"--pin needs 2 CPUs, this process may use {len(mine)}: running unpinned"
        print(why, file=sys.stderr, flush=True)
        yield {"pinned": False, "reason": why}
        return
    server_cpu, bench_cpu = sorted(mine)[:2]
    theirs = os.sched_getaffinity(server.postmaster)
    # The postmaster first: a backend forked after this inherits CPU 0, and every backend forked
    # before it is already listed in /proc when the children are read.
    _set([server.postmaster], {server_cpu})
    backends = _set(_children(server.postmaster), {server_cpu})
    _set([os.getpid()], {bench_cpu})
    print(f"pinned: server (postmaster {server.postmaster}, {backends} backend threads) on CPU "
          f"{server_cpu}, benchmark on CPU {bench_cpu}", file=sys.stderr, flush=True)
    try:
        yield {"pinned": True, "server_cpus": [server_cpu], "bench_cpus": [bench_cpu],
               "postmaster": server.postmaster, "postmaster_found_by": server.found_by}
    finally:
        _set([server.postmaster, *_children(server.postmaster)], theirs)
        _set([os.getpid()], mine)
        print(f"unpinned: server on CPUs {sorted(theirs)}, benchmark on CPUs {sorted(mine)}",
              file=sys.stderr, flush=True)
