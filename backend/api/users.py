"""User administration (admins) and the users of a site (admins anywhere, coordinators at their site)."""

from __future__ import annotations

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from backend.api.reads import read, reads
from backend.api.schemas import PasswordChange, Unlock, UnlockResult, UserCreate, UserRead, UserUpdate
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import accounts, auth


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ("users",)

    @get("/", opt=policy(Role.ADMIN), operation_id="listUsers")
    async def list_users(self, pool: NamedDependency[Pool]) -> list[UserRead]:
        return reads(await accounts.list_users(pool), UserRead)

    @post("/", opt=policy(Role.ADMIN), operation_id="createUser")
    async def create_user(
        self, data: JSONBody[UserCreate], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> UserRead:
        user = await accounts.create_user(
            pool,
            principal,
            username=data.username,
            full_name=data.full_name,
            password=data.password,
            roles=list(data.roles),
            site_codes=list(data.sites),
        )
        return read(user, UserRead)

    @get("/{username:str}", opt=policy(Role.ADMIN), operation_id="getUser")
    async def get_user(self, username: FromPath[str], pool: NamedDependency[Pool]) -> UserRead:
        return read(await accounts.get_user(pool, username), UserRead)

    @patch("/{username:str}", opt=policy(Role.ADMIN), operation_id="updateUser")
    async def update_user(
        self,
        username: FromPath[str],
        data: JSONBody[UserUpdate],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> UserRead:
        """Change name, roles, sites or deactivate; deactivation revokes the user's tokens."""
        user = await accounts.update_user(
            pool,
            principal,
            username,
            full_name=data.full_name,
            active=data.active,
            roles=list(data.roles) if data.roles is not None else None,
            site_codes=list(data.sites) if data.sites is not None else None,
            reason=data.reason,
        )
        return read(user, UserRead)

    @post(
        "/{username:str}/password",
        opt=policy(Role.ADMIN),
        status_code=HTTP_204_NO_CONTENT,
        operation_id="resetPassword",
    )
    async def reset_password(
        self,
        username: FromPath[str],
        data: JSONBody[PasswordChange],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        """Set a user's password (revokes all their tokens)."""
        await accounts.change_password(
            pool,
            principal,
            username,
            current=data.current_password,
            new=data.new_password,
            reason=data.reason,
        )

    @post(
        "/{username:str}/unlock",
        opt=policy(Role.ADMIN),
        status_code=HTTP_200_OK,
        operation_id="unlockUser",
    )
    async def unlock(
        self,
        username: FromPath[str],
        data: JSONBody[Unlock],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> UnlockResult:
        """Lift a sign-in lockout and clear the failed attempts of a user (audited)."""
        lifted = await auth.unlock(pool, principal, username, data.reason)
        return UnlockResult(username=username.strip().lower(), lockouts_lifted=lifted)
