"""Failed sign-ins and the lockouts they cause (see migration 0006)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from backend.db.types import Conn

Scope = Literal["username", "client"]


async def serialise(conn: Conn, scope: Scope, subject: str) -> None:
    """Take a transaction-scoped lock on one subject, so that concurrent failures from several workers
    are counted one after another and trip exactly one lockout."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"login:{scope}:{subject}")


async def active_lockout(conn: Conn, username: str, client: str | None) -> datetime | None:
    """The latest `locked_until` of any lockout in force for this username or this client address."""
    value: datetime | None = await conn.fetchval(
        """SELECT max(locked_until) FROM login_lockouts
           WHERE unlocked_at IS NULL AND locked_until > clock_timestamp()
             AND ((scope = 'username' AND subject = $1) OR (scope = 'client' AND subject = $2::text))""",
        username,
        client,
    )
    return value


async def is_locked(conn: Conn, scope: Scope, subject: str) -> bool:
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM login_lockouts
                          WHERE scope = $1 AND subject = $2 AND unlocked_at IS NULL
                            AND locked_until > clock_timestamp())""",
        scope,
        subject,
    )
    return found


async def record_failure(conn: Conn, username: str, client: str) -> None:
    """`client` is "" when the caller has no address (such failures count for the username only)."""
    await conn.execute("INSERT INTO login_failures (username, client) VALUES ($1, $2)", username, client)


_RECENT = {
    "username": """SELECT count(*) FROM login_failures
                   WHERE username = $1 AND at > clock_timestamp() - make_interval(mins => $2)""",
    "client": """SELECT count(*) FROM login_failures
                 WHERE client = $1 AND at > clock_timestamp() - make_interval(mins => $2)""",
}
_FORGET = {
    "username": "DELETE FROM login_failures WHERE username = $1",
    "client": "DELETE FROM login_failures WHERE client = $1",
}


async def recent_failures(conn: Conn, scope: Scope, subject: str, window_minutes: int) -> int:
    count: int = await conn.fetchval(_RECENT[scope], subject, window_minutes)
    return count


async def lock(conn: Conn, scope: Scope, subject: str, minutes: int) -> datetime:
    locked_until: datetime = await conn.fetchval(
        """INSERT INTO login_lockouts (scope, subject, locked_until)
           VALUES ($1, $2, clock_timestamp() + make_interval(mins => $3))
           RETURNING locked_until""",
        scope,
        subject,
        minutes,
    )
    return locked_until


async def forget_failures(conn: Conn, scope: Scope, subject: str) -> None:
    """A fresh start for this subject: after a successful sign-in or an administrator's unlock."""
    await conn.execute(_FORGET[scope], subject)


async def unlock(conn: Conn, scope: Scope, subject: str, by_user_id: int) -> int:
    status = await conn.execute(
        """UPDATE login_lockouts SET unlocked_at = clock_timestamp(), unlocked_by = $3
           WHERE scope = $1 AND subject = $2 AND unlocked_at IS NULL AND locked_until > clock_timestamp()""",
        scope,
        subject,
        by_user_id,
    )
    return int(status.split()[-1])
