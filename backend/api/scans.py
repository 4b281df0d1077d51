"""Custody scans and the receiver's confirmation of a hand-over."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from backend.api.cases import recorded
from backend.api.custody_schemas import Recorded, ScanRequest, ScanResult
from backend.api.errors import Problem
from backend.api.refusals import answer
from backend.db.types import Pool
from backend.domain.access import Principal, Role, policy
from backend.domain.custody import Action
from backend.http.security import provide_principal
from backend.services import scans
from backend.services.scans import ScanCommand, SignatureInput
from backend.settings import Settings


class ScansController(Controller):
    path = "/api/v1"
    tags = ("scans",)

    @post(
        "/scans",
        opt=policy(Role.COURIER, Role.PHARMACIST, Role.MANUFACTURING),
        operation_id="recordScan",
        responses={
            409: ResponseSpec(Problem, description="refused step (recorded)"),
            422: ResponseSpec(Problem, description="unknown item or missing input (recorded)"),
        },
    )
    async def scan(
        self, data: JSONBody[ScanRequest], request: Request[Any, Any, Any], state: State
    ) -> Response[ScanResult]:
        """Record one custody step. A repeat of the same idempotency key returns the first answer; a refused
        step is recorded in the chain, raises an alert and answers with a problem naming the refusal."""
        # The busiest route takes its collaborators from the request and the app's state instead of three
        # dependencies: Litestar resolves two or more in an anyio task group, a measurable cost on every
        # scan (docs/benchmarks.md).
        principal = provide_principal(request)
        pool: Pool = state.pool
        settings: Settings = state.settings
        command = ScanCommand(
            idempotency_key=data.idempotency_key,
            action=Action(data.action),
            site=data.site,
            codes=data.codes,
            device_time=data.device_time,
            gps=msgspec.to_builtins(data.gps) if data.gps else None,
            handover_to=data.handover_to,
            storage_location=data.storage_location,
            reason=data.reason,
            signatures=[SignatureInput(s.username, s.password, s.meaning) for s in data.signatures],
        )
        outcome = await scans.record_scan(pool, principal, command, settings.handover_confirm_minutes)
        return answer(outcome)

    @post(
        "/handovers/{handover_id:int}/confirm",
        opt=policy(Role.COURIER, Role.PHARMACIST, Role.MANUFACTURING),
        operation_id="confirmHandover",
    )
    async def confirm(
        self, handover_id: FromPath[int], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Recorded:
        """The receiver confirms taking custody; this closes the hand-over."""
        return recorded(await scans.confirm_handover(pool, principal, handover_id))
