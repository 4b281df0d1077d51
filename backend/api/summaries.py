"""Temperature summaries of a shipment and of a case: min, max, mean, MKT where the profile defines it,
minutes beyond each limit (in total and per UTC day) and the alerts."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath

from backend.api.cases import PEOPLE
from backend.db.types import Pool
from backend.domain.access import Principal, policy
from backend.services import temperature_summaries
from backend.services.temperature_summaries import CaseTemperature, ShipmentTemperature


@get(
    "/api/v1/shipments/{shipment_id:str}/temperature",
    opt=policy(*PEOPLE),
    operation_id="shipmentTemperature",
    tags=["shipments"],
)
async def shipment_temperature(
    shipment_id: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> ShipmentTemperature:
    return await temperature_summaries.shipment_temperature(pool, principal, shipment_id)


@get(
    "/api/v1/cases/{coi:str}/temperature",
    opt=policy(*PEOPLE),
    operation_id="caseTemperature",
    tags=["cases"],
)
async def case_temperature(
    coi: FromPath[str], principal: NamedDependency[Principal], pool: NamedDependency[Pool]
) -> CaseTemperature:
    """Every shipment of the case you may see."""
    return await temperature_summaries.case_temperature(pool, principal, coi)
