"""Who may use the studio: the start-up token, its cookie, CSRF tokens and the Host header.

The token printed at start is the only way in; the first request that carries it gets it back
as an HttpOnly, SameSite=Strict cookie and is redirected to the same page without it, so it
stays out of the history and of Referer headers. A write must also carry the CSRF token of the
page it was posted from (an HMAC of the session token) and, when the browser sends one, an
Origin of the studio itself. Requests naming another Host are refused, so a web page cannot
reach the studio through a DNS name it rebinds to 127.0.0.1. A studio listening on every
interface (``--host 0.0.0.0`` or ``::``, read-only) is reached by whatever name or address the
machine has, so it takes any Host and relies on the token alone.

The cookie is named after the port: browsers keep cookies per host, not per port, and two
studios on one machine would otherwise sign each other out.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field

COOKIE = "shared_db_studio"
LOOPBACK_NAMES = frozenset({"localhost"})
WILDCARDS = frozenset({"0.0.0.0", "::", "[::]"})


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """Does ``host`` (an address or ``localhost``) only accept connections from this machine?"""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_header(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{shown}:{port}"


@dataclass(frozen=True)
class Guard:
    """The secrets and rules of one studio process."""

    token: str
    read_only: bool
    hosts: frozenset[str] | None
    """Host headers accepted, lower-case (``127.0.0.1:5555``, ``localhost:5555``, ...); None:
    any (a wildcard address)."""
    cookie: str = COOKIE
    csrf_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @classmethod
    def for_address(cls, host: str, port: int, read_only: bool,
                    token: str | None = None) -> Guard:
        names = {host_header(host, port).lower()}
        if is_loopback(host):
            names |= {host_header(n, port) for n in ("127.0.0.1", "localhost", "::1")}
        return cls(token or new_token(), read_only,
                   None if host in WILDCARDS else frozenset(names), f"{COOKIE}_{port}")

    def accepts_host(self, header: str | None) -> bool:
        """Host names are case-insensitive: ``LOCALHOST:5555`` is ``localhost:5555``."""
        return header is not None and (self.hosts is None or header.lower() in self.hosts)

    def valid_token(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(),
                                                             self.token.encode())

    def csrf(self) -> str:
        return hmac.new(self.csrf_key, self.token.encode(), hashlib.sha256).hexdigest()

    def valid_csrf(self, presented: object) -> bool:
        return isinstance(presented, str) and hmac.compare_digest(presented.encode(),
                                                                  self.csrf().encode())

    def valid_origin(self, origin: str | None, host: str | None) -> bool:
        """No Origin (an older browser, a script) passes; the CSRF token still has to. Else
        it is the studio's own: one of its Host names, the one asked (``host``) when any is."""
        if origin is None:
            return True
        hosts = self.hosts if self.hosts is not None else {(host or "").lower()}
        return origin.lower() in {f"http://{h}" for h in hosts}
