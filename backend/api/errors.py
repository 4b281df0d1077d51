"""The one place that turns errors into HTTP: every error leaves as an RFC 9457 problem+json body."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_303_SEE_OTHER,
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from backend.domain import errors as domain

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def _no_page_context(
    request: Request[Any, Any, Any], principal: Any, title: str, **extra: Any
) -> dict[str, Any]:
    return {"problem_title": title, **extra}


# How a page request's error looks to a signed-in person: the pages (backend.web) know their header and
# navigation, and the composition root hands their context builder in, so this module needs no page code.
_page_context: Callable[..., dict[str, Any]] = _no_page_context


def render_pages_with(page_context: Callable[..., dict[str, Any]]) -> None:
    """Errors of page requests are rendered with the pages' context (called once by the app factory)."""
    global _page_context
    _page_context = page_context


class FieldError(msgspec.Struct, frozen=True):
    field: str
    message: str


class Problem(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] = []
    instance: str | None = None


_DOMAIN_STATUS: dict[type[domain.DomainError], int] = {
    domain.NotFound: HTTP_404_NOT_FOUND,
    domain.Conflict: HTTP_409_CONFLICT,
    domain.InvalidInput: HTTP_422_UNPROCESSABLE_ENTITY,
    domain.AuthenticationFailed: HTTP_401_UNAUTHORIZED,
    domain.PermissionDenied: HTTP_403_FORBIDDEN,
    domain.TooManyAttempts: HTTP_429_TOO_MANY_REQUESTS,
}

_SLUGS = {
    400: "bad-request",
    401: "authentication-required",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
}


def _is_page(request: Request[Any, Any, Any] | None) -> bool:
    if request is None:
        return False
    try:
        return bool(request.route_handler.opt.get("page"))
    except (AttributeError, KeyError):
        return False


def _page_error(request: Request[Any, Any, Any], status: int, title: str, detail: str) -> Response[Any]:
    """A person in a browser gets a page, not JSON: sign-in when the session is missing or over."""
    if status == HTTP_401_UNAUTHORIZED:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        expired = "expired=true&" if request.cookies.get("celltrail_session") else ""
        return Redirect(f"/login?{expired}next={quote(target, safe='/')}", status_code=HTTP_303_SEE_OTHER)
    principal = request.scope.get("user")
    if principal is None:
        return Template(
            "error_anonymous.html", context={"problem_title": title, "detail": detail}, status_code=status
        )
    context = _page_context(request, principal, title, problem_title=title, detail=detail)
    return Template("error.html", context=context, status_code=status)


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    if request is not None and _is_page(request):
        return _page_error(request, status, title, detail)
    body = Problem(
        type=f"urn:celltrail:problem:{_SLUGS.get(status, str(status))}",
        title=title,
        status=status,
        detail=detail,
        errors=errors or [],
        instance=request.url.path if request is not None else None,
    )
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_fields(type_: str, title: str, status: int, detail: str, **members: Any) -> dict[str, Any]:
    """A problem+json body with extension members beside the standard ones (RFC 9457 section 3.2), as a
    command's outcome answers it: no field errors and no instance, so a replayed answer is the same."""
    return {"type": type_, "title": title, "status": status, "detail": detail, "errors": [], **members}


def problem_json(fields: dict[str, Any]) -> Response[Any]:
    return Response(content=fields, status_code=fields["status"], media_type=PROBLEM_JSON)


def _domain_error(request: Request[Any, Any, Any], exc: domain.DomainError) -> Response[Any]:
    status = next((code for kind, code in _DOMAIN_STATUS.items() if isinstance(exc, kind)), 400)
    fields = [FieldError(k, v) for k, v in exc.field_errors.items()]
    headers = {"WWW-Authenticate": 'Bearer realm="celltrail"'} if status == HTTP_401_UNAUTHORIZED else None
    if isinstance(exc, domain.TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    return problem_response(request, status, exc.title, exc.detail, fields, headers)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    fields: list[FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if isinstance(item, dict):
            fields.append(
                FieldError(str(item.get("key") or item.get("source") or "body"), str(item.get("message", "")))
            )
    detail = exc.detail or "the request is not valid"
    if fields:
        detail = "; ".join(f"{f.field}: {f.message}" for f in fields)
    return problem_response(request, HTTP_400_BAD_REQUEST, "Invalid request", detail, fields)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    title = {
        400: "Invalid request",  # Litestar's SerializationException: a body that is not JSON
        401: "Authentication required",
        403: "Not allowed",
        404: "Not found",
        405: "Method not allowed",
        413: "Request too large",
    }.get(exc.status_code, "Request refused")
    detail = exc.detail
    if exc.status_code == HTTP_404_NOT_FOUND and detail in ("Not Found", ""):
        detail = f"there is no resource at {request.url.path}"
    return problem_response(request, exc.status_code, title, detail, headers=exc.headers)


def _database_down(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("database unavailable", extra={"error": type(exc).__name__, "path": request.url.path})
    return problem_response(
        request,
        HTTP_503_SERVICE_UNAVAILABLE,
        "Service unavailable",
        "the database is not reachable right now; nothing was changed — try again shortly",
        headers={"Retry-After": "5"},
    )


def _out_of_range(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # Litestar and msgspec check a request's types, not the database's ranges: an integer id beyond
    # bigint, or a date beyond what timestamptz holds, passes validation and is refused by asyncpg or
    # PostgreSQL (SQLSTATE class 22). That is bad input, not a fault of ours; the transaction rolled back.
    # Not the message: it quotes the offending value, and request values stay out of the logs.
    log.warning("value out of range", extra={"error": type(exc).__name__, "path": request.url.path})
    return problem_response(
        request,
        HTTP_422_UNPROCESSABLE_ENTITY,
        "Invalid input",
        "a value in the request is outside what Celltrail can store (too large, too small or malformed); "
        "nothing was changed",
    )


def _too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[Problem]:
    # msgspec decodes JSON recursively; a body of some thousands of nested arrays exhausts the stack and
    # raises RecursionError instead of a decode error. That is bad input; any other recursion is ours.
    if "deserializing" not in str(exc):
        return _unexpected(request, exc)
    return problem_response(
        request, HTTP_400_BAD_REQUEST, "Invalid request", "the JSON body is nested too deeply to read"
    )


def _raised_by_the_http_layer(exc: BaseException) -> bool:
    """Whether the innermost Python frame of the traceback is Litestar's or our API's own code."""
    traceback = exc.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    module = str(traceback.tb_frame.f_globals.get("__name__", ""))
    return module.startswith(("litestar.", "backend.api."))


def _undecodable(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[Any]:
    # msgspec raises UnicodeDecodeError, not msgspec.DecodeError, for invalid UTF-8 inside a JSON or
    # MessagePack string, so Litestar's decode step lets it through as if it were a fault of ours. Raised
    # while the API reads the request (Litestar's or backend.api's frame), it is the client's bad body;
    # raised anywhere deeper (services, repositories) it is still ours.
    if not _raised_by_the_http_layer(exc):
        return _unexpected(request, exc)
    detail = "the request body is not valid UTF-8; nothing was read"
    return problem_response(request, HTTP_400_BAD_REQUEST, "Invalid request", detail)


def _check_violation(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    # The services check what the schema's CHECK constraints guard; one reaching the database anyway is
    # still the request's bad value, not a server fault: refused and rolled back. The constraint's name
    # goes to the log so the missing service check can be added; the message (it may quote values) not.
    log.warning(
        "check constraint refused a write",
        extra={"constraint": getattr(exc, "constraint_name", None), "path": request.url.path},
    )
    return problem_response(
        request,
        HTTP_422_UNPROCESSABLE_ENTITY,
        "Invalid input",
        "the request breaks a rule of the data (for example a shipment from a site to itself); "
        "nothing was changed",
    )


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, HTTPException):
        return _http_error(request, exc)
    reference = uuid.uuid4().hex[:12]
    log.exception("unhandled error", extra={"reference": reference, "path": request.url.path})
    return problem_response(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal error",
        f"something went wrong on our side; nothing was half-written. Reference {reference}",
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    domain.DomainError: _domain_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    asyncpg.exceptions.PostgresConnectionError: _database_down,
    asyncpg.exceptions.ConnectionDoesNotExistError: _database_down,
    asyncpg.exceptions.CannotConnectNowError: _database_down,
    ConnectionRefusedError: _database_down,
    asyncpg.exceptions.DataError: _out_of_range,
    asyncpg.exceptions.CheckViolationError: _check_violation,
    UnicodeDecodeError: _undecodable,
    RecursionError: _too_deep,
    Exception: _unexpected,
}
