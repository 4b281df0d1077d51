"""Sign-in, sign-out, who am I, and changing one's own password."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from backend.api.schemas import LoginRequest, LoginResponse, Me, PasswordChange
from backend.db.types import Pool
from backend.domain.access import PEOPLE_ROLES, PUBLIC, Principal, Role, policy
from backend.http.clients import client_address
from backend.http.security import request_token
from backend.services import accounts, auth
from backend.settings import Settings


def me_of(principal: NamedDependency[Principal]) -> Me:
    return Me(
        username=principal.username,
        full_name=principal.full_name,
        roles=sorted(principal.roles),
        sites=sorted(principal.sites),
    )


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ("auth",)

    @post("/login", opt=PUBLIC, status_code=HTTP_200_OK, operation_id="login", security=[])
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginRequest],
        pool: NamedDependency[Pool],
        settings: NamedDependency[Settings],
    ) -> LoginResponse:
        """Exchange a username and password for a bearer token. Repeated failures lock the username (and
        a client address) for a while: 429 with Retry-After."""
        issued = await auth.login(
            pool,
            data.username,
            data.password,
            timedelta(minutes=settings.token_ttl_minutes),
            # The peer's address; X-Forwarded-For only from a proxy in CELLTRAIL_TRUSTED_PROXIES (a
            # client could otherwise forge it to dodge the per-address limit).
            client=client_address(request, settings.trusted_proxy_networks),
            limits=auth.LoginLimits.of(settings),
        )
        return LoginResponse(token=issued.token, expires_at=issued.expires_at, user=me_of(issued.principal))

    @post("/logout", opt=policy(*Role), status_code=HTTP_204_NO_CONTENT, operation_id="logout")
    async def logout(self, request: Request[Any, Any, Any], pool: NamedDependency[Pool]) -> None:
        """Revoke the token used for this request."""
        await auth.logout(pool, request_token(request)[0])

    @get("/me", opt=policy(*Role), operation_id="me")
    async def me(self, principal: NamedDependency[Principal]) -> Me:
        return me_of(principal)

    @post(
        "/password",
        opt=policy(*PEOPLE_ROLES),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="changeOwnPassword",
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        """Change your own password; every token of yours is revoked, so sign in again."""
        await accounts.change_password(
            pool,
            principal,
            principal.username,
            current=data.current_password,
            new=data.new_password,
            reason=data.reason,
        )
