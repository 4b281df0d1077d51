"""Type names for database handles. asyncpg's classes are generic only in its stubs, while Litestar
evaluates handler annotations at run time, so the run-time names are the plain classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
    Pool: TypeAlias = asyncpg.Pool[Any]
else:
    Conn = Any
    Pool = asyncpg.Pool
