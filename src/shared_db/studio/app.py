"""The studio's ASGI application: routes, the guard in front of them, and error pages.

Pages are rendered on the server (Jinja2, autoescaped); the forms post to ``/w/...``, and a
refused change re-renders the page it came from with the typed error in place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from shared_db.client import Database
from shared_db.config import Settings
from shared_db.errors import DataAccessError, DatabaseUnavailableError, SharedDbError
from shared_db.studio import edits, forms, pages
from shared_db.studio.guard import GuardMiddleware
from shared_db.studio.query import BadRequest
from shared_db.studio.security import Guard
from shared_db.studio.templating import render, templates

Page = Callable[[Request, dict[str, Any]], Awaitable[Response]]


def _write(edit: Callable[[Request], edits.Edit], page: Page,
           fields: tuple[str, ...] = ()) -> Callable[[Request], Awaitable[Response]]:
    """A POST endpoint: read-only, Origin and CSRF checks, ``fields`` the only ones taken,
    then ``edit`` as the studio."""
    async def endpoint(request: Request) -> Response:
        guard: Guard = request.app.state.guard
        if guard.read_only:
            raise BadRequest("the studio is read-only (--read-only, or SHARED_DB_ENV="
                             "production without --writes); nothing was changed", 405)
        if not guard.valid_origin(request.headers.get("origin"), request.headers.get("host")):
            raise BadRequest("the form was posted from another site; nothing was changed", 403)
        form = await forms.form(request)
        if not guard.valid_csrf(form.pop("csrf", None)):
            raise BadRequest("missing or wrong CSRF token: reload the page and try again; "
                             "nothing was changed", 403)
        try:
            forms.only(form, fields)
            with edits.as_studio(request.client.host if request.client else None):
                target = await edit(request)(request.app.state.db, form)
        except DataAccessError as error:
            refusal = {"kind": type(error).__name__, "message": str(error)}
            return await page(request, {"refusal": refusal,
                                        "status": edits.refusal_status(error)})
        except BadRequest as error:
            if error.status != 400:
                raise
            refusal = {"kind": "BadRequest", "message": error.message}
            return await page(request, {"refusal": refusal, "status": 400})
        return RedirectResponse(target, status_code=303)
    return endpoint


def _routes() -> list[Route | Mount]:
    def key(request: Request) -> Any:
        return edits.uuid_of(request.path_params["key"])

    users, payments, config = (pages.in_table(n) for n in ("users", "payments",
                                                          "system_config"))
    return [
        Route("/", pages.index),
        Route("/t/{table}", pages.table),
        Route("/t/{table}/{key:path}", pages.record),
        Route("/ops/migrations", pages.migrations),
        Route("/ops/stats", pages.stats),
        Route("/ops/doctor", pages.doctor),
        Route("/w/users/new", _write(lambda r: edits.create_user, users.table,
                                     edits.CREATE_USER), methods=["POST"]),
        Route("/w/users/{key}/edit", _write(lambda r: edits.user_edit(key(r)), users.record,
                                            edits.EDIT_USER), methods=["POST"]),
        Route("/w/users/{key}/delete", _write(lambda r: edits.user_flip(key(r), False),
                                              users.record), methods=["POST"]),
        Route("/w/users/{key}/restore", _write(lambda r: edits.user_flip(key(r), True),
                                               users.record), methods=["POST"]),
        Route("/w/payments/{key}/status", _write(
            lambda r: edits.payment_status(key(r)), payments.record, ("to", "expected")),
            methods=["POST"]),
        Route("/w/config/set", _write(lambda r: edits.set_config, config.table,
                                      ("key", "value", "description")), methods=["POST"]),
        Route("/w/config/{key:path}/delete", _write(
            lambda r: edits.config_delete(r.path_params["key"]), config.table),
            methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("shared_db.studio", "static")]),
              name="static"),
    ]


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    response = render(request, "error.html", {"title": "Refused", "message": exc.message},
                      exc.status)
    if exc.status == 405:  # a write route of a read-only studio: no method is allowed there
        response.headers["Allow"] = ""
    return response


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = render(request, "error.html", {"title": "Refused", "message": exc.detail},
                      exc.status_code)
    response.headers.update(exc.headers or {})
    return response


async def _unavailable(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", {"title": "Database unavailable",
                                          "message": str(exc)}, 503)


async def _failed(request: Request, exc: Exception) -> Response:
    # An operations page whose operation failed (a migration chain that cannot be read, ...):
    # its message, which never holds a password, and no traceback.
    return render(request, "error.html", {"title": type(exc).__name__, "message": str(exc)},
                  500)


async def _refused_read(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", {"title": type(exc).__name__,
                                          "message": str(exc)}, 400)


def create_app(settings: Settings, guard: Guard, database: Database | None = None) -> Starlette:
    """The studio for ``settings``' databases; it opens (and closes) its own ``Database``
    unless one is given."""
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if database is not None:
            app.state.db = database
            yield
            return
        async with Database(settings) as db:
            app.state.db = db
            yield

    app = Starlette(routes=_routes(), lifespan=lifespan,
                    middleware=[Middleware(GuardMiddleware, guard=guard)],
                    exception_handlers={BadRequest: _bad_request, HTTPException: _http,
                                        DatabaseUnavailableError: _unavailable,
                                        DataAccessError: _refused_read,
                                        SharedDbError: _failed})
    app.state.guard, app.state.settings, app.state.templates = guard, settings, templates()
    if database is not None:
        app.state.db = database
    return app
