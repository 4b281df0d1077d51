"""Authentication and authorisation for every route: one app-level guard reads the route's declared
policy, so a route without one is refused rather than accidentally open.

Two ways to present the same opaque token: the API's `Authorization: Bearer` header, and the web pages'
HttpOnly session cookie. A browser sends cookies with any request, including one forged by another site,
so a request authenticated by the cookie must also prove it came from our own page before it may change
anything (CSRF): it carries a token derived from the session that only our pages can read."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from backend.domain.access import Policy, Principal
from backend.domain.errors import AuthenticationFailed, PermissionDenied
from backend.services import auth, security_log

OPENAPI_PREFIX = "/schema"
SESSION_COOKIE = "celltrail_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_token: str) -> str:
    """Bound to the session: useless to anyone who cannot already read the (HttpOnly) session cookie."""
    return hashlib.sha256(b"celltrail-csrf\x00" + session_token.encode()).hexdigest()


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "sign in first: send the token from POST /api/v1/auth/login as 'Authorization: Bearer <token>'"
        )
    return token.strip()


def request_token(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str, bool]:
    """The caller's token and whether it came from the session cookie."""
    if connection.headers.get("authorization"):
        return bearer_token(connection), False
    cookie = connection.cookies.get(SESSION_COOKIE, "").strip()
    if cookie:
        return cookie, True
    return bearer_token(connection), False  # raises the "sign in first" problem


def _check_csrf(connection: ASGIConnection[Any, Any, Any, Any], token: str) -> None:
    if connection.scope.get("method", "GET") in SAFE_METHODS:
        return
    sent = connection.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(token).encode()):
        raise PermissionDenied(
            "this change did not come from a Celltrail page (missing or wrong CSRF token); reload the page"
        )


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    if handler.opt.get("public"):
        return
    token, via_cookie = request_token(connection)
    principal = await auth.authenticate(connection.app.state.pool, token)
    if via_cookie:
        _check_csrf(connection, token)
    connection.scope["user"] = principal
    declared = handler.opt.get("policy")
    if declared is None:
        if connection.scope["path"].startswith(OPENAPI_PREFIX):
            return  # the API description: any signed-in user may read it
        raise PermissionDenied("this route declares no access policy, so it is closed to everyone")
    assert isinstance(declared, Policy)
    reason = declared.denial(principal, connection.path_params, str(connection.scope.get("method", "GET")))
    if reason is not None:
        await security_log.refused(
            connection.app.state.pool,
            principal,
            action="access_refused",
            entity="route",
            # The operation, not the path: a path holds ids the caller typed, which may be another
            # site's (the gate answers those as unknown, and the trail must not keep them either).
            entity_id=_operation(handler),
            why=reason,
            what={"method": connection.scope.get("method", "")},
        )
        raise PermissionDenied(reason)


def _operation(handler: BaseRouteHandler) -> str:
    operation = getattr(handler, "operation_id", None)
    return operation if isinstance(operation, str) else handler.handler_name


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get("user")
    assert isinstance(principal, Principal)
    return principal
