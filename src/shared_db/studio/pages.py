"""The studio's pages: the tables with their counts, a table view, a record with its related
records, and the operations pages (migrations, stats, doctor)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shared_db.ops import doctor as doctor_ops
from shared_db.ops import monitoring
from shared_db.ops import status as status_ops
from shared_db.ops.targets import Target, resolve_targets
from shared_db.studio import browse, forms
from shared_db.studio.catalog import PARENTS, TableInfo
from shared_db.studio.edits import allowed_moves, uuid_of
from shared_db.studio.query import BadRequest, Listing, listing, plain_text, table_named
from shared_db.studio.render import bars
from shared_db.studio.templating import render

DONE = {"created": "Created.", "updated": "Saved.", "deleted": "Deleted.",
        "restored": "Restored.", "moved": "Status changed.", "saved": "Saved."}
"""What a redirect after a write says; only these words, never text from the URL."""


def _done(request: Request) -> str | None:
    return DONE.get(request.query_params.get("ok", ""))


def _takes(request: Request, *names: str) -> None:
    """Refuse a query parameter this page does not read: whoever sent it would believe it
    filtered or changed what is shown."""
    for name in forms.query(request):
        if name not in names:
            raise BadRequest(f"unknown parameter {name[:40]!r}; this page takes "
                             f"{', '.join(names) or 'none'}")


async def index(request: Request) -> Response:
    _takes(request)
    counts = await browse.counts(request.app.state.db)
    return render(request, "index.html", {"title": "Tables", "counts": counts})


async def _table(request: Request, view: Listing, extra: dict[str, Any]) -> Response:
    found = await browse.page(request.app.state.db, view)
    context = {"title": view.table.name, "info": view.table, "view": view, "page": found,
               "parents": PARENTS, "done": _done(request), **extra}
    return render(request, "table.html", context, extra.get("status", 200))


async def table(request: Request) -> Response:
    return await _table(request, listing(request.path_params["table"], forms.query(request)),
                        {})


def _key(info: TableInfo, raw: str) -> Any:
    spec = info.field(info.key)
    if spec is not None and spec.kind == "uuid":
        return uuid_of(raw, "key")
    return plain_text(raw, "key")


async def _record(request: Request, name: str, extra: dict[str, Any]) -> Response:
    info = table_named(name)
    db = request.app.state.db
    row = await browse.record(db, info, _key(info, request.path_params["key"]))
    if row is None:
        raise BadRequest(f"{info.name} has no row with {info.key} "
                         f"{request.path_params['key'][:60]!r}", 404)
    related = await browse.related(db, info, row)
    moves = allowed_moves(row["status"]) if info.name == "payments" else []
    context = {"title": f"{info.name} {row[info.key]}", "info": info, "row": row,
               "related": related, "parents": PARENTS, "moves": moves,
               "done": _done(request), **extra}
    return render(request, "record.html", context, extra.get("status", 200))


async def record(request: Request) -> Response:
    _takes(request, "ok")
    return await _record(request, request.path_params["table"], {})


@dataclass(frozen=True)
class InTable:
    """Re-renders a table's pages after a refused write, the error shown in place."""

    name: str

    async def table(self, request: Request, extra: dict[str, Any]) -> Response:
        return await _table(request, listing(self.name, {}), extra)

    async def record(self, request: Request, extra: dict[str, Any]) -> Response:
        return await _record(request, self.name, extra)


def in_table(name: str) -> InTable:
    return InTable(name)


async def _targets(request: Request) -> list[Target]:
    """The databases, resolved once: resolving starts the embedded server, and a studio whose
    server was stopped (``shared-db db stop``) must not start it again on its own."""
    _takes(request)
    state = request.app.state
    if getattr(state, "targets", None) is None:
        state.targets = await asyncio.to_thread(resolve_targets, state.settings)
    found: list[Target] = state.targets
    return found


async def migrations(request: Request) -> Response:
    settings = request.app.state.settings
    found = [await asyncio.to_thread(partial(status_ops.status, t, settings.migrations_dir,
                                             cache=settings.cache_dir))
             for t in await _targets(request)]
    return render(request, "migrations.html", {"title": "Migrations", "statuses": found})


async def stats(request: Request) -> Response:
    # A page that is read never installs pg_stat_statements (a read-only studio changes nothing)
    found = [await asyncio.to_thread(partial(monitoring.collect, t, 10, install=False))
             for t in await _targets(request)]
    charts = [{
        "stats": s,
        "sizes": bars([(t.table, t.bytes, t.size) for t in s.tables], "table sizes"),
        "scans": bars([(i.index, i.scans, str(i.scans)) for i in s.indexes],
                      "index scans"),
        "statements": bars([(q.query, q.total_ms, f"{q.total_ms:.1f} ms")
                            for q in s.top_statements], "top statements by total time"),
    } for s in found]
    return render(request, "stats.html", {"title": "Stats", "charts": charts})


async def doctor(request: Request) -> Response:
    settings = request.app.state.settings
    checks = await asyncio.to_thread(doctor_ops.diagnose, settings, await _targets(request))
    return render(request, "doctor.html", {"title": "Doctor", "checks": checks})
