"""The union of every identifier type."""

from typing import TypeAlias

from backend.domain.identifiers.celltrail import LoggerId, ShipmentId
from backend.domain.identifiers.gs1 import Giai, Gln, Sscc
from backend.domain.identifiers.isbt import Coi, Din, UnitId

Identifier: TypeAlias = Coi | Din | UnitId | Sscc | Giai | Gln | ShipmentId | LoggerId
