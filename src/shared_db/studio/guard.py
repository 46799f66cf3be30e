"""The ASGI middleware in front of every route: the Host header, then the token or its cookie.

Writes are checked further where they are handled (read-only, Origin, CSRF), since only the
endpoint reads the form.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared_db.studio.security import COOKIE, Guard

UNAUTHORIZED = """<!doctype html><title>shared-db studio: sign-in needed</title>
<h1>401: sign-in needed</h1>
<p>Open the address <code>shared-db studio</code> printed when it started
(<code>Studio: http://…/?token=…</code>); it keeps you signed in with a cookie.</p>"""


class GuardMiddleware:
    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = self._refusal(Request(scope))
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _refusal(self, request: Request) -> Response | None:
        if request.headers.get("host") not in self.guard.hosts:
            return HTMLResponse("<!doctype html><title>Refused</title><h1>400: unexpected "
                                "Host header</h1><p>Use the address the studio printed.</p>",
                                400)
        token = request.query_params.get("token")
        if token is not None:
            if not self.guard.valid_token(token):
                return HTMLResponse(UNAUTHORIZED, 401)
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            response = RedirectResponse(_same_site(request.scope["path"]) + (
                f"?{urlencode(rest)}" if rest else ""), status_code=303)
            response.set_cookie(COOKIE, self.guard.token, httponly=True, samesite="strict",
                                path="/")
            return response
        if request.url.path.startswith("/static/"):
            return None  # the stylesheet and script hold no data
        if not self.guard.valid_token(request.cookies.get(COOKIE)):
            return HTMLResponse(UNAUTHORIZED, 401)
        return None


def _same_site(path: str) -> str:
    """The decoded ``path`` as a Location that stays on the studio: ``//host/`` (or
    ``/\\host/``, which browsers read alike) would send the browser, just signed in, to
    another site."""
    return "/" + quote(path.lstrip("/\\"), safe="/")
