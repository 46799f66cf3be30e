"""Hide passwords in text meant for people: URLs, conninfo strings, messages, reprs.

Only what is shown is changed; code that connects keeps the real values
(``ConnectionSettings.libpq_url()``, ``Settings.database_url``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote_plus

HIDDEN = "***"

# The password runs from the first ':' after the user name to the last '@' before the next
# space or quote: an unencoded '@', '/' or '?' inside a password is still hidden whole.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@'\"\[\]]*):"
                           r"[^\s'\"]*@")
# password=…, sslpassword=…, PGPASSWORD=…, in query strings and conninfo (quoted or not).
_KEY_PASSWORD = re.compile(r"(?i)(?P<head>password\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|[^\s&'\"]*)")
# 'password': '…' in the repr of a dict, and "password": "…" in JSON.
_ITEM_PASSWORD = re.compile(r"(?i)(?P<head>(?P<q>['\"])[a-z_]*password(?P=q)\s*:\s*)"
                            r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")

# SQL string constants: '…' (quotes doubled inside), E'…' (backslash escapes), $tag$…$tag$.
_SQL_LITERAL = re.compile(r"(?is)\bE'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'"
                          r"|(?P<tag>\$(?:[A-Za-z_]\w*)?\$).*?(?P=tag)")
_PASSWORD_WORD = re.compile(r"(?i)\b(?:sslpassword|password|passwd)\b")

SECRET_KEYWORDS = frozenset({"password", "sslpassword"})
"""URL query parameters and libpq keywords whose values are secrets."""


def redact(text: str) -> str:
    """``text`` with every password it visibly carries replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{HIDDEN}@", text)
    text = _KEY_PASSWORD.sub(lambda m: f"{m['head']}{HIDDEN}", text)
    return _ITEM_PASSWORD.sub(lambda m: f"{m['head']}{m['q']}{HIDDEN}{m['q']}", text)


def redact_url(raw: str) -> str:
    """One URL with the password of its user and of its query parameters hidden.

    Unlike ``redact``, the URL is known to be one: its user information ends at the last '@'
    before the query, so a host or parameter after it stays readable.
    """
    scheme, sep, rest = raw.partition("://")
    if not sep:
        return redact(raw)
    head, qmark, query = rest.partition("?")
    at = head.rfind("@")
    if at < 0 and "@" in query:
        return redact(raw)  # maybe a '?' inside the password: hide up to the last '@'
    if at >= 0:
        user, colon, _ = head[:at].partition(":")
        if colon:
            head = f"{user}:{HIDDEN}{head[at:]}"
    if qmark:
        query = hide_query_secrets(query)
    shown = f"{scheme}{sep}{head}{qmark}{query}"
    return _ITEM_PASSWORD.sub(lambda m: f"{m['head']}{m['q']}{HIDDEN}{m['q']}",
                              _KEY_PASSWORD.sub(lambda m: f"{m['head']}{HIDDEN}", shown))


def hide_query_secrets(query: str) -> str:
    """A URL query string with the values of ``password``-like parameters hidden."""
    pieces = []
    for piece in query.split("&"):
        key, equals, _ = piece.partition("=")
        if equals and unquote_plus(key).strip().lower() in SECRET_KEYWORDS:
            piece = f"{key}={HIDDEN}"
        pieces.append(piece)
    return "&".join(pieces)


def hide_secrets(params: Mapping[str, str]) -> dict[str, str]:
    """libpq keywords with the values of the secret ones hidden."""
    return {key: HIDDEN if key.lower() in SECRET_KEYWORDS else value
            for key, value in params.items()}


def redact_sql(text: str) -> str:
    """A statement's text with the constants of one that speaks of a password hidden.

    ``pg_stat_statements`` replaces the constants of queries by ``$1``, but keeps a utility
    statement as it was sent: ``ALTER ROLE app PASSWORD 'secret'`` is stored with its password,
    as are a foreign server's options and a dblink connection string.
    """
    if _PASSWORD_WORD.search(text):
        text = _SQL_LITERAL.sub(f"'{HIDDEN}'", text)
    return redact(text)
