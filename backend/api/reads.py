"""Database rows become API responses only through read schemas: the Structs a resource module declares
for its responses. A row's shape follows its query and may gain columns; the read schema is the public
contract, and the OpenAPI document names it rather than a repository type."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import msgspec

Read = TypeVar("Read")


def read(row: object, schema: type[Read]) -> Read:
    """The row (any object with the schema's fields as attributes) as the read schema; extra attributes
    of the row are left out, a missing one is a programming error (msgspec.ValidationError)."""
    return msgspec.convert(row, schema, from_attributes=True)


def reads(rows: Iterable[object], schema: type[Read]) -> list[Read]:
    return [read(row, schema) for row in rows]
