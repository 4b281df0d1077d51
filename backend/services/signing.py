"""Electronic signatures (Part 11 style): the signer re-enters the password; the record keeps the printed
name, the time and the meaning, and becomes part of the signed event's hash.

A signature is a sign-in in all but name, so it is guarded like one:
- every refusal gives the same answer ("signature refused"), whether the user is unknown, the password
  wrong, or the right password belongs to someone without the role or not bound to the scan's site:
  the answer is no oracle for passwords, user names or roles;
- every refusal counts as a failed sign-in of that username (backend/services/auth.py), so after
  `max_failures` the username is locked for signatures and for the sign-in form alike, and while it is
  locked even the right password is refused (without being checked);
- every refusal is in the audit trail (why, where, for what meaning; never the password).
The count and the audit entry are written on a connection of their own and committed at once: the
scan's transaction may be rolled back (a resent idempotency key, a serialisation retry), a failed
guess must stay counted all the same."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from backend.db.pool import pool_of
from backend.db.repo import users
from backend.db.repo.users import UserRow
from backend.domain.access import Role
from backend.domain.chain import SignatureRecord
from backend.domain.custody import Refusal
from backend.services import auth
from backend.services.passwords import verify_password

if TYPE_CHECKING:
    from backend.db.types import Conn

log = logging.getLogger(__name__)

MEANINGS = (
    "received and verified",
    "released",
    "administered",
    "verified at bedside",
    "quarantined",
    "disposed",
    "cancelled",
    # QA's hold on a unit and its release (backend/services/holds.py).
    "placed on hold",
    "released from hold",
    "deviation recorded",
    # QA accepting a delivery despite an unresolved critical excursion, stating the deviation.
    "accepted with deviation",
    # QA's sign-off of a case's whole record, as far as its chain reached (backend/services/cases.py).
    "record reviewed",
    # A manufacturing site's answer to a treatment order (backend/services/planning/orders.py).
    "order accepted",
    "order declined",
    # A pharmacist's allocation of a bag of an allogeneic batch to a recipient (services/allocation.py).
    "allocated to recipient",
    "allocation withdrawn",
)
REFUSED = "signature refused"
# Waiting longer than this for a connection of its own (a pool exhausted by concurrent scans), the
# failure is written in the scan's transaction instead, which a refused scan commits.
_SIDE_CONNECTION_SECONDS = 2.0

_limits = auth.DEFAULT_LIMITS


def configure(limits: auth.LoginLimits) -> None:
    """The sign-in limits signatures count against (the app sets them from its settings at start)."""
    global _limits
    _limits = limits


def _refused() -> Refusal:
    return Refusal("signature_invalid", REFUSED)


# The refusals of a signature (its meaning, the signer, the password): answered as input to correct.
SIGNATURE_REFUSALS = frozenset({"signature_invalid", "signature_required"})


async def sign(
    conn: Conn,
    username: str,
    password: str,
    meaning: str,
    allowed: frozenset[Role],
    at: datetime,
    site: str | None = None,
) -> SignatureRecord:
    """The signature of `username` for `meaning` at `site`, or Refusal("signature_invalid"). The signer
    must hold one of the `allowed` roles and be bound to `site`; None only where the caller has already
    bound the signer to the place (a signer signing their own receipt or release)."""
    if meaning not in MEANINGS:
        raise Refusal(
            "signature_invalid",
            f"unknown signature meaning {meaning!r}; use one of " + ", ".join(MEANINGS),
        )
    name = username.strip().lower()
    details: dict[str, object] = {"site": site, "meaning": meaning}
    locked = await auth.signature_lockout(conn, name)
    if locked is not None:
        await _record(conn, name, counted=False, details=details | {"why": "locked"})
        # A lockout is no secret: the sign-in form tells anyone who tries that username the same.
        raise Refusal("signature_invalid", f"{REFUSED}: {locked.detail}")
    user = await users.by_username(conn, name)
    # Argon2 takes tens of milliseconds; keep the event loop free meanwhile. An unknown user is checked
    # against a decoy hash, so every refusal takes the same time.
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
    roles = [r for r in user.roles if Role(r) in allowed] if user else []
    why = _why_refused(user, ok, roles, site)
    if why is not None or user is None:
        await _record(conn, name, counted=True, details=details | {"why": why})
        raise _refused()
    return SignatureRecord(
        username=user.username, printed_name=user.full_name, meaning=meaning, role=roles[0], signed_at=at
    )


def _why_refused(user: UserRow | None, ok: bool, roles: list[str], site: str | None) -> str | None:
    """For the audit trail only: the answer is the same whatever the reason."""
    if user is None:
        return "unknown_user"
    if not ok:
        return "wrong_password"
    if not user.active:
        return "inactive"
    if not roles:
        return "wrong_role"
    if site is not None and site not in user.sites:
        return "wrong_site"
    return None


async def _record(conn: Conn, name: str, *, counted: bool, details: dict[str, object]) -> None:
    # Not the typed user name: it is in the audit trail, and a password typed into the wrong field must
    # not reach the logs.
    log.warning("signature refused", extra={"why": details.get("why"), "site": details.get("site")})
    pool = pool_of(conn)
    if pool is not None:
        try:
            side = await pool.acquire(timeout=_SIDE_CONNECTION_SECONDS)
        except TimeoutError:
            log.warning("no free database connection to count a refused signature; counted with the scan")
        else:
            try:
                await auth.record_signature_failure(side, name, _limits, counted=counted, details=details)
            finally:
                await pool.release(side)
            return
    # A savepoint in the caller's transaction, which a refused scan commits.
    await auth.record_signature_failure(conn, name, _limits, counted=counted, details=details)
