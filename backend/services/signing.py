"""Electronic signatures (Part 11 style): the signer re-enters the password; the record keeps the printed
name, the time and the meaning, and becomes part of the signed event's hash."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING

from backend.db.repo import users
from backend.domain.access import Role
from backend.domain.chain import SignatureRecord
from backend.domain.custody import Refusal
from backend.services.passwords import verify_password

if TYPE_CHECKING:
    from backend.db.types import Conn

MEANINGS = (
    "received and verified",
    "released",
    "administered",
    "verified at bedside",
    "quarantined",
    "disposed",
)


async def sign(
    conn: Conn, username: str, password: str, meaning: str, allowed: frozenset[Role], at: datetime
) -> SignatureRecord:
    if meaning not in MEANINGS:
        raise Refusal(
            "signature_invalid",
            f"unknown signature meaning {meaning!r}; use one of " + ", ".join(MEANINGS),
            status=422,
        )
    user = await users.by_username(conn, username.strip().lower())
    # Argon2 takes tens of milliseconds; keep the event loop free meanwhile.
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        raise Refusal(
            "signature_invalid", f"signature by {username} refused: wrong user name or password", status=422
        )
    roles = [r for r in user.roles if Role(r) in allowed]
    if not roles:
        raise Refusal(
            "signature_invalid",
            f"{username} may not sign this: it needs the role " + " or ".join(sorted(allowed)),
            status=422,
        )
    return SignatureRecord(
        username=user.username, printed_name=user.full_name, meaning=meaning, role=roles[0], signed_at=at
    )
