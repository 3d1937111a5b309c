"""The shared-secret check in front of every HTTP route but the signaling socket."""

from __future__ import annotations

import hmac
from typing import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def token_middleware(token: str, open_paths: frozenset[str], open_prefixes: tuple[str, ...] = ()) -> Middleware:
    """403 with an empty body unless X-Auth-Token (or, for Prometheus scrapers, `Authorization: Bearer`)
    equals `token` (constant-time) or the path is open (under an open prefix, the routes check for themselves)."""
    expected = token.encode()

    @web.middleware
    async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in open_paths or request.path.startswith(open_prefixes):
            return await handler(request)
        given = request.headers.get("X-Auth-Token", "")
        if not given:
            scheme, _space, credentials = request.headers.get("Authorization", "").partition(" ")
            given = credentials if scheme.lower() == "bearer" else ""
        if not hmac.compare_digest(given.encode(), expected):
            return web.Response(status=403)
        return await handler(request)

    return check_token
