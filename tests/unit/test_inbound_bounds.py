"""Every string, list and map a client can send is bounded. The walk starts from each route's request body
(whatever Litestar decodes into `data`), so a new route or a new field fails here until it has a limit;
the few deliberate exceptions are listed with the reason and what bounds them instead."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi
import pytest
from litestar import Litestar

from backend.app import MAX_BODY_BYTES, create_app
from backend.settings import load_settings

# (route operation or struct, field path) -> why it may stay unbounded. Strict: an entry that is bounded
# after all, or no longer exists, fails too, so the table never outlives its reason.
UNBOUNDED: dict[tuple[str, str], str] = {
    ("ProfileVersionCreate", "definition"): (
        "checked against ProfileDefinition by the service; backend/api/profiles.py is not ours to edit "
        "(suggested: `definition: ProfileDefinition` or Meta(max_length=30))"
    ),
}
# An anchored pattern without unbounded repetition bounds the length as well as max_length would.
_UNBOUNDED_REPEAT = re.compile(r"(?<!\\)[*+]|\{\d+,\}")


def _bounded_pattern(pattern: str | None) -> bool:
    return (
        pattern is not None
        and pattern.startswith("^")
        and pattern.endswith("$")
        and not _UNBOUNDED_REPEAT.search(pattern)
    )


def _unbounded(info: mi.Type, path: str, seen: set[type]) -> Iterator[str]:
    """Paths (`field.sub[]`) of every string, bytes, list or map without a length limit, and of `Any`."""
    if isinstance(info, mi.StrType):
        if info.max_length is None and not _bounded_pattern(info.pattern):
            yield path
    elif isinstance(info, (mi.BytesType, mi.ByteArrayType)):
        if info.max_length is None:
            yield path
    elif isinstance(info, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        if info.max_length is None:
            yield path
        yield from _unbounded(info.item_type, f"{path}[]", seen)
    elif isinstance(info, mi.DictType):
        if info.max_length is None:
            yield path
        yield from _unbounded(info.key_type, f"{path}{{key}}", seen)
        yield from _unbounded(info.value_type, f"{path}{{}}", seen)
    elif isinstance(info, mi.TupleType):
        for index, item in enumerate(info.item_types):
            yield from _unbounded(item, f"{path}[{index}]", seen)
    elif isinstance(info, mi.UnionType):
        for member in info.types:
            yield from _unbounded(member, path, seen)
    elif isinstance(info, (mi.StructType, mi.DataclassType, mi.NamedTupleType, mi.TypedDictType)):
        if info.cls in seen:
            return
        seen.add(info.cls)
        for field in info.fields:
            yield from _unbounded(field.type, f"{path}.{field.name}" if path != "$" else field.name, seen)
    elif isinstance(info, mi.AnyType):
        yield path


def _body_type(handler: Any) -> Any | None:
    """What Litestar decodes the request body into (the `data` parameter), without its Body marker."""
    parameter = handler.parsed_fn_signature.parameters.get("data")
    return None if parameter is None else parameter.annotation


def _inbound(app: Litestar) -> Iterator[tuple[str, Any, Any]]:
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            body = _body_type(handler)
            if body is not None:
                yield handler.operation_id or f"{route.path} {sorted(handler.http_methods)}", body, handler


@pytest.fixture(scope="module")
def app() -> Litestar:
    # Building the app connects to nothing; the database is only reached in the lifespan.
    return create_app(load_settings({}, database_url="postgresql://nobody@127.0.0.1:9/none"))


def _findings(app: Litestar) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for operation, body, handler in _inbound(app):
        info = mi.type_info(body)
        owner = info.cls.__name__ if isinstance(info, mi.StructType) else operation
        for path in _unbounded(info, "$", set()):
            found[(owner, path)] = handler
    return found


def _exempt(key: tuple[str, str]) -> bool:
    """Listed in UNBOUNDED itself, or inside a listed field (an unbounded map's keys and values)."""
    owner, path = key
    return any(
        owner == listed_owner
        and (path == listed or path[len(listed) : len(listed) + 1] in ("{", "[", "."))
        and path.startswith(listed)
        for listed_owner, listed in UNBOUNDED
    )


def test_every_inbound_field_is_bounded(app: Litestar) -> None:
    found = _findings(app)
    unexplained = sorted(key for key in found if not _exempt(key))
    assert unexplained == [], (
        "inbound fields without a length limit (give them Meta(max_length=...), see backend/api/schemas.py):"
        f" {unexplained}"
    )


def test_the_exceptions_are_still_needed_and_bounded_by_the_body_size(app: Litestar) -> None:
    found = _findings(app)
    assert sorted(set(UNBOUNDED) - set(found)) == [], "bounded now: remove from UNBOUNDED"
    for key in UNBOUNDED:
        limit = found[key].resolve_request_max_body_size()
        assert limit is not None, key
        assert limit <= 10_000_000, (key, limit)


def test_the_walk_sees_the_bodies_it_should(app: Litestar) -> None:
    # A walk that found nothing would pass the other tests vacuously.
    names = {getattr(body, "__name__", "") for _, body, _ in _inbound(app)}
    assert {"LoginRequest", "CaseCreate", "CorrectionCreate", "ShipmentCreate", "ScanRequest"} <= names
    assert {"SubscriptionCreate", "UserCreate", "LoginForm", "ReceiptDecision"} <= names


def test_every_body_without_a_route_limit_of_its_own_gets_the_app_limit(app: Litestar) -> None:
    assert app.request_max_body_size == MAX_BODY_BYTES <= 1024 * 1024
    for _, _, handler in _inbound(app):
        assert handler.resolve_request_max_body_size() is not None


def test_a_correction_carries_named_scalars_only() -> None:
    from backend.api.custody_schemas import CorrectionCreate

    ok = msgspec.json.decode(
        b'{"reason": "wrong expiry", "fields": {"expiry": "2026-12-01", "count": 2}}', type=CorrectionCreate
    )
    assert ok.fields == {"expiry": "2026-12-01", "count": 2}
    for bad in (
        b'{"reason": "nested", "fields": {"x": {"y": 1}}}',
        b'{"reason": "too long", "fields": {"x": "' + b"a" * 2001 + b'"}}',
        b'{"reason": "too many", "fields": {' + b",".join(b'"k%d": 1' % i for i in range(51)) + b"}}",
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(bad, type=CorrectionCreate)


class _Probe(msgspec.Struct):
    a: str
    b: list[Annotated[str, msgspec.Meta(max_length=3)]]
    c: dict[str, int]
    d: Annotated[str, msgspec.Meta(pattern="^a+$")]
    e: Any
    f: Annotated[str, msgspec.Meta(pattern="^[a-z]{1,5}$")]
    g: Annotated[str, msgspec.Meta(max_length=5)] | None
    h: Annotated[list[Annotated[str, msgspec.Meta(max_length=3)]], msgspec.Meta(max_length=2)]


def test_the_walk_finds_what_is_unbounded() -> None:
    assert set(_unbounded(mi.type_info(_Probe), "$", set())) == {"a", "b", "c", "c{key}", "d", "e"}
