"""Rendering a page: the Jinja2 environment (autoescaped, templates inside the package) and
what every page is given (the sidebar, read-only or not, the CSRF token)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from shared_db.studio.catalog import by_service
from shared_db.studio.render import FILTERS
from shared_db.studio.security import Guard


def templates() -> Jinja2Templates:
    env = Environment(loader=PackageLoader("shared_db.studio", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    env.globals["urlencode"] = urlencode
    return Jinja2Templates(env=env)


def render(request: Request, template: str, context: dict[str, Any],
           status: int = 200) -> Response:
    guard: Guard = request.app.state.guard
    shared = {"groups": by_service(), "read_only": guard.read_only, "csrf": guard.csrf(),
              "topology": request.app.state.settings.topology}
    found: Jinja2Templates = request.app.state.templates
    return found.TemplateResponse(request, template, {**shared, **context},
                                  status_code=status)
