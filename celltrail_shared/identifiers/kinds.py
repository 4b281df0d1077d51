"""The union of every identifier type."""

from typing import TypeAlias

from celltrail_shared.identifiers.celltrail import LoggerId, ShipmentId
from celltrail_shared.identifiers.gs1 import Giai, Gln, Sscc
from celltrail_shared.identifiers.isbt import Coi, Din, UnitId

Identifier: TypeAlias = Coi | Din | UnitId | Sscc | Giai | Gln | ShipmentId | LoggerId
