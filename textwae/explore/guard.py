"""The explorer's HTTP gate: only requests addressed to this server, from its own page.

The page has no login, so whoever can send it requests can run the model and read the held-out
texts. A web page elsewhere can make a browser send them: by DNS rebinding (its own name made
to resolve to this machine, so the browser's requests carry that name as Host) or by a
cross-site form or fetch (a POST whose Origin is another site). `RequestGuard`, an ASGI
middleware in front of Gradio's app, answers those with 4xx before Gradio sees them, and
refuses uploads, which the page never makes. Plain ASGI and the standard library: the CLI
imports this module before it knows whether the explore extra is installed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # read, never change state
# Gradio's routes that take files; the page has no file component
UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/process_recording")

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is this machine's loopback (so the page is served
    to this machine alone)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False
    return bool(addresses) and all(
        ipaddress.ip_address(address.split("%", 1)[0]).is_loopback for address in addresses)


def is_wildcard(host: str) -> bool:
    """0.0.0.0 or :: (every interface): the page is then reached by names not known here."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def served_names(host: str) -> frozenset[str]:
    """The Host names a server bound to `host` answers to: the loopback names, `host` itself
    and, bound to every interface, this machine's own names."""
    names = {*LOOPBACK_NAMES, host.strip("[]").lower()}
    if is_wildcard(host):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


def host_name(value: str) -> str:
    """The name in a Host header ('[::1]:7860' -> '::1'); '' where there is none."""
    try:
        return (urlsplit(f"//{value}").hostname or "").lower()
    except ValueError:
        return ""


def is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class RequestGuard:
    """Refuses, for a server bound to `host`, a request whose Host is not a name it serves
    (400), a state-changing request or a websocket from another origin (403) and any upload
    (403).

    Bound to every interface, an IP address as Host is accepted too: a DNS-rebinding page
    sends its own domain name, never an address, and others reach the page by this machine's
    addresses.
    """

    def __init__(self, app: ASGIApp, host: str) -> None:
        self.app = app
        self.names = served_names(host)
        self.any_address = is_wildcard(host)

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = self.refusal(scope)
            if refusal is not None:
                status, reason = refusal
                await _refuse(scope, send, status, reason)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """(status, reason) to answer `scope` with, or None to let it through."""
        headers = {key.decode("latin-1").lower(): value.decode("latin-1")
                   for key, value in scope.get("headers", [])}
        host = headers.get("host", "")
        name = host_name(host)
        if name not in self.names and not (self.any_address and is_address(name)):
            return 400, "this server does not answer to that Host name"
        if scope.get("path", "").startswith(UPLOAD_PATHS):
            return 403, "the explorer takes no uploads"
        if scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None and not _same_origin(origin, host):
                return 403, "requests from another site are refused"
        return None


def _same_origin(origin: str, host: str) -> bool:
    """Whether an Origin header names this server as the request reached it (a sandboxed
    page's 'null' does not)."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


async def _refuse(scope: Scope, send: Callable, status: int, reason: str) -> None:
    if scope["type"] == "websocket":  # closed before it is accepted: the client sees a 403
        await send({"type": "websocket.close", "code": 1008, "reason": reason})
        return
    body = f"{reason}\n".encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})
