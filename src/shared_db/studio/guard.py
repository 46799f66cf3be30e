"""The ASGI middleware in front of every route: the Host header, then the token or its cookie.

Writes are checked further where they are handled (read-only, Origin, CSRF), since only the
endpoint reads the form.
"""

from __future__ import annotations

from urllib.parse import quote, quote_from_bytes, unquote_to_bytes

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared_db.studio.security import Guard

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
        if not self.guard.accepts_host(request.headers.get("host")):
            return _refused("unexpected Host header", "Use the address the studio printed.")
        try:
            # Starlette reads the path's bytes that are not UTF-8 as U+FFFD: a key nobody typed
            unquote_to_bytes(request.scope.get("raw_path") or b"").decode("utf-8")
        except UnicodeDecodeError:
            return _refused("the path is not UTF-8", "Percent-encode UTF-8 bytes.")
        raw_query: bytes = request.scope.get("query_string", b"")
        parts = [p for p in raw_query.split(b"&") if p]
        tokens = [p for p in parts if p.partition(b"=")[0] == b"token"]
        if len(tokens) > 1:
            return _refused("token is given more than once", "Open the printed address.")
        if tokens:
            if not self.guard.valid_token(request.query_params.get("token")):
                return HTMLResponse(UNAUTHORIZED, 401)
            # The rest of the query as it came, byte for byte: read and written again, a
            # value that is not UTF-8 would come back as U+FFFD and be refused no more.
            rest = b"&".join(p for p in parts if p not in tokens)
            response = RedirectResponse(_same_site(request.scope["path"]) + (
                f"?{quote_from_bytes(rest, safe=QUERY_SAFE)}" if rest else ""), status_code=303)
            response.set_cookie(self.guard.cookie, self.guard.token, httponly=True,
                                samesite="strict", path="/")
            return response
        if request.url.path.startswith("/static/"):
            return None  # the stylesheet and script hold no data
        if not self.guard.valid_token(request.cookies.get(self.guard.cookie)):
            return HTMLResponse(UNAUTHORIZED, 401)
        return None


QUERY_SAFE = "=&%+;/:,?@!$'()*~-._"
"""What a query string keeps as it is when sent on: its own escapes and separators."""


def _refused(what: str, hint: str) -> Response:
    return HTMLResponse(f"<!doctype html><title>Refused</title><h1>400: {what}</h1>"
                        f"<p>{hint}</p>", 400)


def _same_site(path: str) -> str:
    """The decoded ``path`` as a Location that stays on the studio: ``//host/`` (or
    ``/\\host/``, which browsers read alike) would send the browser, just signed in, to
    another site."""
    return "/" + quote(path.lstrip("/\\"), safe="/")
