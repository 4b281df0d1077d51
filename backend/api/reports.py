"""The vein-to-vein record of a case: as a PDF to file and print, and as JSON."""

from __future__ import annotations

import asyncio
from typing import Final

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from backend.db.types import Pool
from backend.domain.access import RECORD_READERS, Principal, policy
from backend.reports.pdf import render_pdf
from backend.reports.record import CaseRecord, case_record

# The record may carry patient fields: no copy in shared caches.
NO_STORE: Final = {"Cache-Control": "no-store"}


class ReportsController(Controller):
    path = "/api/v1/cases"
    tags = ("records",)

    @get(
        "/{coi:str}/report.pdf",
        opt=policy(*RECORD_READERS),
        operation_id="caseReportPdf",
        media_type="application/pdf",
    )
    async def report_pdf(
        self, coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Response[bytes]:
        """The vein-to-vein record as PDF: events with signatures, temperature charts, alerts and their
        handling, corrections and the chain verdict with the final hash."""
        record = await case_record(pool, principal, coi)
        # Laying out pages is CPU work; keep it off the event loop.
        content = await asyncio.to_thread(render_pdf, record)
        disposition = f'attachment; filename="{record.coi}-vein-to-vein.pdf"'
        return Response(
            content, media_type="application/pdf", headers={"Content-Disposition": disposition, **NO_STORE}
        )

    @get("/{coi:str}/record.json", opt=policy(*RECORD_READERS), operation_id="caseRecordJson")
    async def record_json(
        self, coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Response[CaseRecord]:
        """The same record as JSON (readings included, patient fields only for the treatment site)."""
        record = await case_record(pool, principal, coi)
        return Response(record, headers=NO_STORE)
