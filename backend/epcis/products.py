"""Products' GTINs. A unit of a product that has a GTIN is an SGTIN in EPCIS events: the GTIN with the
unit's serial, `https://id.gs1.org/01/<gtin>/21/<serial>`, where the serial is the unit id without its
hyphens (COI, kind, number: 20 characters, the most AI 21 holds). Units of other products keep
Celltrail's private URN."""

from __future__ import annotations

import re
from typing import Final

import asyncpg
import msgspec

from backend.db.repo import audit
from backend.db.types import Conn
from backend.domain.access import Principal
from backend.domain.errors import InvalidInput
from celltrail_shared.identifiers import IdentifierError, gs1_check_digit

_GTIN: Final = re.compile(r"[0-9]{8}|[0-9]{12,14}")


class Product(msgspec.Struct, frozen=True):
    product: str
    gtin: str


def gtin14(text: str) -> str:
    """A GTIN-8, -12, -13 or -14 as the 14 digits GS1 Digital Link writes; InvalidInput when it is not
    one (wrong length or check digit)."""
    digits = text.strip()
    if not _GTIN.fullmatch(digits):
        raise InvalidInput(
            f"a GTIN has 8, 12, 13 or 14 digits, not {text!r}", field_errors={"gtin": "not a GTIN"}
        )
    padded = digits.rjust(14, "0")
    try:
        expected = gs1_check_digit(padded[:-1])
    except IdentifierError:  # pragma: no cover - digits were checked above
        expected = -1
    if int(padded[-1]) != expected:
        raise InvalidInput(
            f"GTIN {digits} has the check digit {padded[-1]}, but its digits give {expected}",
            field_errors={"gtin": "wrong check digit"},
        )
    return padded


async def all_products(conn: Conn) -> list[Product]:
    rows = await conn.fetch("SELECT product, gtin FROM epcis_products ORDER BY product")
    return [Product(r["product"], r["gtin"]) for r in rows]


async def gtins(conn: Conn) -> dict[str, str]:
    """Product -> GTIN, for every product that has one."""
    return {p.product: p.gtin for p in await all_products(conn)}


async def is_product_gtin(conn: Conn, gtin: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM epcis_products WHERE gtin = $1", gtin))


async def set_gtin(conn: Conn, actor: Principal, product: str, gtin: str) -> Product:
    """Give a product its GTIN (or another one). A GTIN already naming another product is refused."""
    other = await conn.fetchval(
        "SELECT product FROM epcis_products WHERE gtin = $1 AND product <> $2", gtin, product
    )
    if other is not None:
        raise InvalidInput(
            f"GTIN {gtin} already names the product {other}", field_errors={"gtin": "already in use"}
        )
    before = await conn.fetchval("SELECT gtin FROM epcis_products WHERE product = $1", product)
    try:
        await conn.execute(
            """INSERT INTO epcis_products (product, gtin, set_by) VALUES ($1, $2, $3)
               ON CONFLICT (product) DO UPDATE SET gtin = $2, set_by = $3, set_at = now()""",
            product,
            gtin,
            actor.user_id,
        )
    except asyncpg.UniqueViolationError:
        # Given to another product at the same moment.
        raise InvalidInput(
            f"GTIN {gtin} already names another product", field_errors={"gtin": "already in use"}
        ) from None
    await audit.record(
        conn,
        actor_id=actor.user_id,
        actor_name=actor.full_name,
        action="product_gtin_set",
        entity="product",
        entity_id=product,
        old_value={"gtin": before} if before else None,
        new_value={"gtin": gtin},
        # Master data of the whole network, like the site directory: no site's own record.
        sites=[],
    )
    return Product(product, gtin)
