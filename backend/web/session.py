"""Signing in and out of the web pages: the same opaque token as the API, kept in an HttpOnly, SameSite
cookie so page scripts never hold it. A second, readable cookie carries only the expiry, so a page can
say when its session ends and send the person to sign in again when it has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_204_NO_CONTENT, HTTP_303_SEE_OTHER

from backend.db.types import Pool
from backend.domain.access import PUBLIC, Role, policy
from backend.domain.errors import AuthenticationFailed, PermissionDenied, TooManyAttempts
from backend.http.clients import client_address
from backend.http.security import SESSION_COOKIE, request_token
from backend.services import auth
from backend.settings import Settings

EXPIRY_COOKIE = "celltrail_session_expires"
PAGE: dict[str, bool] = {"page": True}


class LoginForm(msgspec.Struct):
    # Bounded like the API's LoginRequest: a form field must not carry megabytes either.
    username: Annotated[str, msgspec.Meta(max_length=200)] = ""
    password: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    next: Annotated[str, msgspec.Meta(max_length=2000)] = "/"


def safe_next(target: str) -> str:
    """Only a path on this site: a login link must not become a redirect to somebody else's."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _same_origin(request: Request[Any, Any, Any]) -> bool:
    # A sign-in form posted from another site would sign the victim in as the attacker (login CSRF).
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


def _secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


@get("/login", opt={**PUBLIC, **PAGE}, include_in_schema=False)
async def login_page(next: FromQuery[str] = "/", expired: FromQuery[bool] = False) -> Template:
    message = "Your session has ended; please sign in again." if expired else None
    return Template("login.html", context={"next": safe_next(next), "notice": message, "error": None})


@post("/login", opt={**PUBLIC, **PAGE}, include_in_schema=False, status_code=HTTP_303_SEE_OTHER)
async def login_submit(
    request: Request[Any, Any, Any],
    data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    pool: NamedDependency[Pool],
    settings: NamedDependency[Settings],
) -> Response[Any]:
    target = safe_next(data.next)
    if not _same_origin(request):
        raise PermissionDenied("sign in from Celltrail's own sign-in page")
    try:
        issued = await auth.login(
            pool,
            data.username,
            data.password,
            timedelta(minutes=settings.token_ttl_minutes),
            # The same limits as the API's sign-in: one count per username and per client address.
            client=client_address(request, settings.trusted_proxy_networks),
            limits=auth.LoginLimits.of(settings),
        )
    except (AuthenticationFailed, TooManyAttempts) as failed:
        locked = isinstance(failed, TooManyAttempts)
        headers = (
            {"Retry-After": str(failed.retry_after_seconds)} if isinstance(failed, TooManyAttempts) else None
        )
        return Template(
            "login.html",
            context={"next": target, "notice": None, "error": failed.detail, "username": data.username},
            # The form again with the reason, as a page: a 401 would ask for HTTP authentication.
            status_code=429 if locked else 200,
            headers=headers,
        )
    max_age = max(int((issued.expires_at - datetime.now(UTC)).total_seconds()), 1)
    secure = _secure(request)
    return Redirect(
        target,
        status_code=HTTP_303_SEE_OTHER,
        cookies=[
            Cookie(
                key=SESSION_COOKIE,
                value=issued.token,
                max_age=max_age,
                httponly=True,
                samesite="strict",
                secure=secure,
                path="/",
            ),
            Cookie(
                key=EXPIRY_COOKIE,
                value=issued.expires_at.isoformat(timespec="seconds"),
                max_age=max_age,
                httponly=False,
                samesite="strict",
                secure=secure,
                path="/",
            ),
        ],
    )


@post("/logout", opt=policy(*Role), include_in_schema=False, status_code=HTTP_204_NO_CONTENT)
async def logout(request: Request[Any, Any, Any], pool: NamedDependency[Pool]) -> Response[None]:
    await auth.logout(pool, request_token(request)[0])
    response: Response[None] = Response(None, status_code=HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(EXPIRY_COOKIE, path="/")
    return response
