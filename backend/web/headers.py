"""Security headers on every response. The pages load scripts, styles and images only from this server
and no other site may frame them; the camera is allowed for this origin only (the courier's page). Served
as https (CELLTRAIL_PUBLIC_URL), browsers are also told to use nothing but https for a year (HSTS), so a
network attacker cannot downgrade a later visit to plain http and read the session cookie."""

from __future__ import annotations

from typing import Final

from litestar.types import BeforeMessageSendHookHandler, Message, Scope

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS: Final = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=(self)"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
HSTS: Final = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def serves_https(public_url: str | None) -> bool:
    return (public_url or "").strip().lower().startswith("https://")


def security_headers(*, hsts: bool) -> BeforeMessageSendHookHandler:
    """A `before_send` hook rather than a middleware: it sees every response, including the 404 and 405
    answers Litestar's router gives before any middleware runs. `hsts` when the public URL is https
    (behind a TLS-terminating proxy the request arrives as plain http: the setting decides, not the
    request's scheme)."""
    headers = (*HEADERS, HSTS) if hsts else HEADERS

    async def add_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        present = {name.lower() for name, _ in message.get("headers", [])}
        extra = [(name, value) for name, value in headers if name not in present]
        if b"cache-control" not in present:
            # Pages and API answers carry patient-linked data: never kept in shared caches.
            extra.append((b"cache-control", b"no-store"))
        message["headers"] = [*message.get("headers", []), *extra]

    return add_headers
