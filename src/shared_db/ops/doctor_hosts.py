"""``doctor`` on a multi-host URL: each host's role, its replication lag, the synchronous standby.

Each host of the URL is asked on its own (``target_session_attrs=any``), so a host that is down
or a standby shows as what it is instead of being skipped the way libpq skips it when it looks
for the primary. The primary's ``pg_stat_replication`` tells which standby is synchronous and how
far each one lags in replay.
"""

from __future__ import annotations

from typing import Literal

import psycopg

from shared_db.connect import connect_timeout
from shared_db.errors_db import first_line
from shared_db.ops.targets import Target

Status = Literal["ok", "warn", "fail", "unknown"]
Finding = tuple[str, Status, str, str | None]
"""(check name, status, detail, fix) for doctor to report under the target."""
ROLE = "SELECT pg_is_in_recovery(), now() - pg_last_xact_replay_timestamp()"
STANDBYS = ("SELECT client_addr::text, client_port, application_name, state, sync_state, "
            "COALESCE(EXTRACT(epoch FROM replay_lag), 0) FROM pg_stat_replication")
LAG_WARN = 10.0
"""Seconds of replay lag after which a standby counts as behind."""


def host_findings(target: Target) -> list[Finding]:
    """One finding per host, and one for the synchronous standby; none for a one-host URL."""
    hosts = each_host(target.connection.url.hosts, target.connection.url.query)
    if len(hosts) < 2:
        return []
    checks: list[Finding] = []
    primaries: list[str] = []
    standbys: list[tuple[str, str, str, float]] = []
    alone = {k: v for k, v in target.connection.url.query.items() if k not in ("host", "port")}
    for host, port in hosts:
        where = f"{host}:{port}"
        single = target.connection.url.set(hosts=((host, port),), query={
            **alone, "target_session_attrs": "any"})
        try:
            with psycopg.connect(single.render(hide_password=False), autocommit=True,
                                 connect_timeout=connect_timeout(target.connection)) as conn:
                row = conn.execute(ROLE).fetchone()
                assert row is not None
                if not row[0]:
                    primaries.append(where)
                    standbys = [(str(r[2]), str(r[3]), str(r[4]), float(r[5]))
                                for r in conn.execute(STANDBYS)]
                    checks.append((f"host {where}", "ok", "primary", None))
                else:
                    checks.append((f"host {where}", "ok", "standby", None))
        except psycopg.Error as error:
            checks.append((f"host {where}", "warn", f"not reachable: {first_line(error)}",
                           "start it, or let the cluster manager replace it"))
    checks.append(_replication(primaries, standbys))
    return checks


def each_host(hosts: tuple[tuple[str, int | None], ...], query: dict[str, str],
              ) -> list[tuple[str, int]]:
    """Every host the URL names with the port libpq pairs it with: ``?host=`` replaces the
    hosts before the path, and ``?port=`` gives one port for all or one per host."""
    names = ([(h, None) for h in query["host"].split(",")] if query.get("host")
             else list(hosts))
    ports = [p for p in query.get("port", "").split(",") if p]
    if len(ports) == 1:
        ports = ports * len(names)
    found = []
    for index, (host, port) in enumerate(names):
        given = ports[index] if len(ports) == len(names) else None
        found.append((host, int(given) if given else port or 5432))
    return found


def _replication(primaries: list[str], standbys: list[tuple[str, str, str, float]]) -> Finding:
    if len(primaries) != 1:
        return ("replication", "fail",
                f"{len(primaries)} primaries among the hosts ({', '.join(primaries)})",
                "exactly one host must accept writes; check the cluster manager")
    shown = ", ".join(f"{name} {sync} ({state}, replay lag {lag:.1f} s)"
                      for name, state, sync, lag in standbys) or "no standby attached"
    synchronous = [name for name, _, sync, _ in standbys if sync == "sync"]
    behind = [name for name, _, _, lag in standbys if lag > LAG_WARN]
    if not synchronous or behind:
        fix = ("a commit is acknowledged before any standby has it: attach a synchronous "
               "standby (synchronous_standby_names, or Patroni's synchronous_mode)"
               if not synchronous else f"standbys behind by over {LAG_WARN:g} s: "
               f"{', '.join(behind)}")
        return ("replication", "warn", f"primary {primaries[0]}; {shown}", fix)
    return ("replication", "ok",
            f"primary {primaries[0]}; synchronous standby {synchronous[0]}; {shown}", None)
