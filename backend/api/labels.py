"""Label files for the web pages: GET /api/v1/labels/{kind}/{id}.{png|pdf|zpl}. Each print is recorded."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services.label_printing import FORMATS, print_label


@get(
    "/api/v1/labels/{kind:str}/{filename:str}",
    operation_id="label",
    tags=["labels"],
    opt=policy(Role.COORDINATOR, Role.PHARMACIST, Role.MANUFACTURING, Role.QA, Role.ADMIN),
    media_type="application/octet-stream",
)
async def label(
    kind: FromPath[str],
    filename: FromPath[str],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    dpi: Annotated[int | None, QueryParameter(ge=203, le=600)] = None,
) -> Response[bytes]:
    """`kind` is bag (unit id), shipment, wristband (COI) or asset (logger id); `filename` is the id with
    .png, .pdf or .zpl. A repeat print of the same label is recorded as a reprint."""
    content = await print_label(pool, principal, kind, filename, dpi)
    media = FORMATS[filename.rpartition(".")[2]]
    return Response(
        content, media_type=media, headers={"Content-Disposition": f'inline; filename="{kind}-{filename}"'}
    )
