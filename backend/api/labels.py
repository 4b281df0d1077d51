"""Label files: GET /api/v1/labels/{kind}/{id}.{png|pdf|zpl} downloads a label and writes nothing; POST to
the same path prints it — answers the same file and records the print (a repeat as a reprint)."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK

from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.services import label_printing
from backend.services.label_printing import Rendered

LABEL_ROLES = (Role.COORDINATOR, Role.PHARMACIST, Role.MANUFACTURING, Role.QA, Role.ADMIN)
Dpi = Annotated[int | None, QueryParameter(ge=203, le=600)]


def _file(rendered: Rendered) -> Response[bytes]:
    return Response(
        rendered.content,
        media_type=rendered.media_type,
        headers={"Content-Disposition": f'inline; filename="{rendered.kind}-{rendered.name}.{rendered.fmt}"'},
    )


@get(
    "/api/v1/labels/{kind:str}/{filename:str}",
    operation_id="label",
    tags=["labels"],
    opt=policy(*LABEL_ROLES),
    media_type="application/octet-stream",
)
async def label(
    kind: FromPath[str],
    filename: FromPath[str],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    dpi: Dpi = None,
) -> Response[bytes]:
    """Download a label; nothing is recorded (print with POST to record it). `kind` is bag (unit id),
    shipment, wristband (COI) or asset (logger id); `filename` is the id with .png, .pdf or .zpl. A
    wristband carries the patient identity fields its treating site's policy names, filled by the server
    (the read is in the audit trail) and only for that site's pharmacists and coordinators."""
    return _file(await label_printing.render(pool, principal, kind, filename, dpi))


@post(
    "/api/v1/labels/{kind:str}/{filename:str}",
    operation_id="printLabel",
    tags=["labels"],
    opt=policy(*LABEL_ROLES),
    media_type="application/octet-stream",
    status_code=HTTP_200_OK,
)
async def print_label(
    kind: FromPath[str],
    filename: FromPath[str],
    principal: NamedDependency[Principal],
    pool: NamedDependency[Pool],
    dpi: Dpi = None,
) -> Response[bytes]:
    """Print a label: answers the label file and records the print — in the case's custody chain for a
    bag, shipment or wristband label (a repeat print as a reprint), in the audit trail for a logger's
    asset tag. Same kinds and file names as the download."""
    return _file(await label_printing.print_label(pool, principal, kind, filename, dpi))
