"""A real high-availability cluster on this machine: ``python -m bench.cluster start|stop|status``.

etcd and two (``--nodes 3``: three) PostgreSQL 15 nodes under Patroni, all from Debian's packages
(``apt-get install patroni etcd-server postgresql-15``), on loopback ports, with synchronous
replication (``synchronous_mode``): a commit is acknowledged once the synchronous standby has it,
and Patroni promotes only that standby, so an acknowledged commit survives losing the leader.
``start`` prints the multi-host URL that follows the leader
(``target_session_attrs=read-write``); the tests start and stop their own cluster the same way.

Why these settings: ``primary_start_timeout: 0`` makes a crashed leader fail over instead of
being restarted in place (the default waits 300 s); ttl 10, loop_wait 2 and retry_timeout 4 keep
``loop_wait + 2 * retry_timeout <= ttl`` as Patroni requires and replace a leader in seconds.
PostgreSQL refuses to run as root, so Patroni runs as the ``postgres`` OS user, from a clean
environment (``/usr/bin/patroni`` is a script for Debian's own Python).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

BIN = Path("/usr/lib/postgresql/15/bin")
DEFAULT_HOME = Path("/tmp/shared-db-ha")
BASE_PORT = 25432
"""PostgreSQL on BASE_PORT + i, etcd on + 100 and + 101, Patroni's REST API on + 200 + i: below
the kernel's range of ephemeral ports (32768-60999 by default), where an outgoing connection may
hold any port at the moment the cluster wants to listen on it."""
_CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Node:
    name: str
    port: int
    api: int
    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class Cluster:
    """etcd plus Patroni nodes under ``home``; ``start`` waits for a leader and a synchronous
    standby, ``stop`` leaves no process behind."""

    def __init__(self, home: Path = DEFAULT_HOME, nodes: int = 2, base_port: int = BASE_PORT):
        self.home = home
        self.scope = f"shared-db-{base_port}"
        self.etcd_port = base_port + 100
        self.nodes = [Node(f"node{i + 1}", base_port + i, base_port + 200 + i,
                           home / f"node{i + 1}") for i in range(nodes)]

    def url(self, database: str = "postgres", attrs: str = "read-write") -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs={attrs}"

    # -- processes --------------------------------------------------------------------------

    def start(self, timeout: float = 90) -> None:
        if not (shutil.which("patroni") and shutil.which("etcd") and BIN.is_dir()):
            raise SystemExit("the HA cluster needs Debian's patroni, etcd-server and "
                             "postgresql-15: apt-get install -y patroni etcd-server "
                             "postgresql-15")
        self.stop()
        postgres = pwd.getpwnam("postgres")
        self.home.mkdir(parents=True, exist_ok=True)
        os.chown(self.home, postgres.pw_uid, postgres.pw_gid)
        self._spawn("etcd", self._etcd_args(), self.home / "etcd.log")
        self._wait(lambda: self._http(f"http://127.0.0.1:{self.etcd_port}/health"), timeout,
                   "etcd did not start", self.home / "etcd.log")
        for node in self.nodes:
            node.home.mkdir(parents=True, exist_ok=True)
            os.chown(node.home, postgres.pw_uid, postgres.pw_gid)
            config = node.home / "patroni.yml"
            config.write_text(json.dumps(self._config(node), indent=1))  # YAML reads JSON
            os.chown(config, postgres.pw_uid, postgres.pw_gid)
            self._spawn(node.name, ["/usr/bin/patroni", str(config)], node.home / "patroni.log",
                        user="postgres")
        self.wait_healthy(timeout)

    def stop(self, grace: float = 15) -> None:
        """Patroni first (it stops its PostgreSQL), then etcd; whatever outlives ``grace``
        seconds, and any postmaster Patroni left behind, is killed."""
        pids = []
        for name in [n.name for n in self.nodes] + ["etcd"]:
            pid_file = self.home / f"{name}.pid"
            if pid_file.exists():
                pids.append(int(pid_file.read_text()))
                _kill(pids[-1], signal.SIGTERM)
        deadline = time.monotonic() + grace
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in [*pids, *filter(None, map(self.postmaster, self.nodes))]:
            _kill(pid, signal.SIGKILL)
        shutil.rmtree(self.home, ignore_errors=True)

    def _spawn(self, name: str, args: list[str], log: Path, user: str | None = None) -> None:
        with log.open("ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.home,
                                    env=_CLEAN_ENV, user=user, start_new_session=True)
        (self.home / f"{name}.pid").write_text(str(proc.pid))

    def _etcd_args(self) -> list[str]:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_port + 1}"
        return ["etcd", "--name", "ha", "--data-dir", str(self.home / "etcd"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"ha={peer}"]

    def _config(self, node: Node) -> dict[str, Any]:
        trust = ["local all all trust", "host all all 127.0.0.1/32 trust",
                 "host replication all 127.0.0.1/32 trust"]
        return {
            "scope": self.scope, "namespace": "/shared-db/", "name": node.name,
            "restapi": {"listen": f"127.0.0.1:{node.api}",
                        "connect_address": f"127.0.0.1:{node.api}"},
            "etcd3": {"hosts": f"127.0.0.1:{self.etcd_port}"},
            "bootstrap": {
                "dcs": {"ttl": 10, "loop_wait": 2, "retry_timeout": 4,
                        "primary_start_timeout": 0, "synchronous_mode": True,
                        "maximum_lag_on_failover": 1048576,
                        "postgresql": {"use_pg_rewind": True, "parameters": {
                            "max_prepared_transactions": 64, "wal_log_hints": "on",
                            "synchronous_commit": "on", "max_connections": 100}}},
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
                "pg_hba": trust,
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.port}", "connect_address": f"127.0.0.1:{node.port}",
                "data_dir": str(node.data), "bin_dir": str(BIN),
                "pgpass": str(node.home / "pgpass"), "pg_hba": trust,
                "authentication": {"superuser": {"username": "postgres"},
                                   "replication": {"username": "postgres"},
                                   "rewind": {"username": "postgres"}},
                "parameters": {"unix_socket_directories": str(node.home)},
            },
        }

    # -- state ------------------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        for node in self.nodes:
            found = self._http(f"http://127.0.0.1:{node.api}/cluster")
            if found:
                return list(json.loads(found).get("members", []))
        return []

    def leader(self) -> Node | None:
        names = {m["name"] for m in self.members()
                 if m.get("role") == "leader" and m.get("state") == "running"}
        return next((n for n in self.nodes if n.name in names), None)

    def sync_standby(self, leader: Node) -> str | None:
        """The node attached as synchronous standby, read on the leader itself."""
        try:
            with psycopg.connect(leader.url(), connect_timeout=2) as conn:
                row = conn.execute("SELECT application_name FROM pg_stat_replication WHERE "
                                   "sync_state = 'sync' AND state = 'streaming'").fetchone()
        except psycopg.OperationalError:
            return None
        return None if row is None else str(row[0])

    def wait_healthy(self, timeout: float = 90) -> Node:
        """A running leader with a streaming synchronous standby; the leader."""
        def healthy() -> Node | None:
            leader = self.leader()
            return leader if leader and self.sync_standby(leader) else None
        found = self._wait(healthy, timeout, "no leader with a synchronous standby")
        assert isinstance(found, Node)
        return found

    def postmaster(self, node: Node) -> int | None:
        """The node's running postmaster (a stale pid file's number may be another process's)."""
        try:
            pid = int((node.data / "postmaster.pid").read_text().split()[0])
            running = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError, IndexError):
            return None
        return pid if running.startswith("postgres") else None

    def kill_leader(self) -> Node:
        """SIGKILL the leader's postmaster (a crash of its server); the node that was leader."""
        leader = self.leader()
        assert leader is not None, "no leader to kill"
        pid = self.postmaster(leader)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        return leader

    def switchover(self, candidate: Node | None = None, timeout: float = 30) -> None:
        """A planned change of leader through Patroni's REST API.

        Patroni answers 412 until its own view has the candidate as synchronous standby, which
        lags what ``pg_stat_replication`` shows by up to a loop; so it is asked again.
        """
        leader = self.leader()
        assert leader is not None
        target = candidate or next(n for n in self.nodes if n != leader)
        body = json.dumps({"leader": leader.name, "candidate": target.name}).encode()
        deadline = time.monotonic() + timeout
        while True:
            request = urllib.request.Request(
                f"http://127.0.0.1:{leader.api}/switchover", body,
                {"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    answer.read()
                return
            except urllib.error.HTTPError as refused:
                if refused.code != 412 or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    @staticmethod
    def _http(url: str) -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return str(answer.read().decode())
        except OSError:
            return None

    @staticmethod
    def _wait(probe: Any, timeout: float, failure: str, log: Path | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(0.2)
        said = log.read_text(errors="replace").strip().splitlines()[-1:] if log else []
        raise RuntimeError(f"{failure} within {timeout:.0f} s" + "".join(
            f" (its log ends: {line})" for line in said))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):  # our own child: reap it, or it stays
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__)
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--nodes", type=int, default=2, choices=(2, 3))
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    args = parser.parse_args()
    cluster = Cluster(args.home, args.nodes)
    if args.action == "start":
        cluster.start()
        print(cluster.url())
    elif args.action == "stop":
        cluster.stop()
    else:
        json.dump(cluster.members(), sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
