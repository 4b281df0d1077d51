"""Authentication and authorisation for every route: one app-level guard reads the route's declared
policy, so a route without one is refused rather than accidentally open."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from backend.domain.access import Policy, Principal
from backend.domain.errors import AuthenticationFailed, PermissionDenied
from backend.services import auth

OPENAPI_PREFIX = "/schema"


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed(
            "sign in first: send the token from POST /api/v1/auth/login as 'Authorization: Bearer <token>'"
        )
    return token.strip()


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    if handler.opt.get("public"):
        return
    principal = await auth.authenticate(connection.app.state.pool, bearer_token(connection))
    connection.scope["user"] = principal
    declared = handler.opt.get("policy")
    if declared is None:
        if connection.scope["path"].startswith(OPENAPI_PREFIX):
            return  # the API description: any signed-in user may read it
        raise PermissionDenied("this route declares no access policy, so it is closed to everyone")
    assert isinstance(declared, Policy)
    reason = declared.denial(principal, connection.path_params)
    if reason is not None:
        raise PermissionDenied(reason)


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get("user")
    assert isinstance(principal, Principal)
    return principal
