"""Refuse requests that change the server's state when a browser sends them from another site.

Gradio's CORS handling only keeps a foreign page from reading the response; the request itself still
runs, so any page a user visits could POST files into `/gradio_api/upload` or start renders on an app
at 127.0.0.1. Browsers name the page's site in the Origin header of every cross-site POST, so a POST
whose Origin is not the app's own host is refused. Clients other than browsers (gradio_client, curl)
send no Origin and are let through: they are not a page acting in someone else's name.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
CHANGING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def app_hosts(headers: dict[str, str]) -> set[str]:
    """The host[:port] names the app is reached under: Host, and a proxy's X-Forwarded-Host (a Space's)."""
    names = [headers.get("host", "")] + headers.get("x-forwarded-host", "").split(",")
    return {name.strip().lower() for name in names if name.strip()}


def foreign_origin(headers: dict[str, str]) -> str | None:
    """The request's Origin when it is another site's ("null", from a sandboxed or local page, is too)."""
    origin = headers.get("origin")
    if origin is None:
        return None
    return None if urlsplit(origin).netloc.lower() in app_hosts(headers) else origin


class SameOriginPosts:
    """ASGI middleware: a state-changing request from a foreign Origin gets 403 and never reaches the app."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in CHANGING_METHODS:
            headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
            origin = foreign_origin(headers)
            if origin is not None:
                body = f"Refused: a request from {origin} cannot change this app.".encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
