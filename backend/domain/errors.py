"""Domain errors: what went wrong in words a person can act on. backend/api/errors.py maps them to HTTP."""

from __future__ import annotations


class DomainError(Exception):
    title = "Request refused"

    def __init__(self, detail: str, *, field_errors: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field_errors = field_errors or {}


class NotFound(DomainError):
    title = "Not found"


class Conflict(DomainError):
    title = "Conflict with the current state"


class InvalidInput(DomainError):
    title = "Invalid input"


class AuthenticationFailed(DomainError):
    title = "Authentication required"


class PermissionDenied(DomainError):
    title = "Not allowed"


class TooManyAttempts(DomainError):
    """Sign-in refused without checking the password: too many recent failures for this username or
    client address. `retry_after_seconds` is when the lockout ends (answered as Retry-After)."""

    title = "Too many attempts"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds
