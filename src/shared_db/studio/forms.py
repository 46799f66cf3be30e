"""Query strings and posted forms, read strictly: UTF-8 only, each name once, bounded in size.

Starlette's parsers replace bytes that are not UTF-8 with U+FFFD (or read them as Latin-1), so
a filter would silently search for, and a new user would silently be stored with, text nobody
typed; and they keep every repeat of a name, of which a page would use one. Both are refused
here, naming the field, before anything is read from or written to a database.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from shared_db.studio.query import BadRequest

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY = 256 * 1024
"""Bytes of a posted form: the largest field the edits take is 10,000 characters."""
MAX_FIELDS = 20


def _text(raw: bytes, where: str) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{where}: is not UTF-8 text (percent-encode UTF-8 bytes)") from None


def pairs(raw: bytes, what: str) -> dict[str, str]:
    """``raw`` (``a=1&b=2``, percent-encoded UTF-8) as names and values; ``what`` ("parameter"
    or "field") names them in a refusal."""
    found: dict[str, str] = {}
    for part in raw.split(b"&"):
        if not part:
            continue
        name_raw, _, value_raw = part.partition(b"=")
        name = _text(name_raw, f"a {what} name")
        value = _text(value_raw, f"{what} {name[:40]!r}")
        if name in found:
            raise BadRequest(f"{name[:40]!r}: each {what} may be given once")
        found[name] = value
    return found


def query(request: Request) -> dict[str, str]:
    """The request's query string, strictly."""
    return pairs(request.scope.get("query_string", b""), "parameter")


async def form(request: Request) -> dict[str, str]:
    """The posted form, strictly."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise BadRequest(f"Content-Type: a form is posted as {FORM_TYPE}, not "
                         f"{kind[:60] or 'nothing'!r}; nothing was changed", 415)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadRequest(f"the form is larger than {MAX_BODY} bytes; nothing was changed",
                             413)
    found = pairs(bytes(body), "field")
    if len(found) > MAX_FIELDS:
        raise BadRequest(f"the form has more than {MAX_FIELDS} fields; nothing was changed")
    return found


def only(found: dict[str, str], fields: Iterable[str]) -> None:
    """Refuse a field outside ``fields``: it would be ignored, and whoever sent it would
    believe it was written."""
    known = set(fields)
    unknown = sorted(n for n in found if n not in known)
    if unknown:
        raise BadRequest(f"{unknown[0][:40]!r}: unknown field; this form takes "
                         f"{', '.join(sorted(known)) or 'no field'}; nothing was changed")
