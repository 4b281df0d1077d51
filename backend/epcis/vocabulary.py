"""The CBV 2.0 vocabulary (and the GS1 Web Vocabulary terms EPCIS sensor data uses), in the bare form
EPCIS 2.0 JSON-LD writes, with their Web URI forms. The JSON schema accepts any URI in these places, so a
document is CBV-conformant only when every such value is one of these terms."""

from __future__ import annotations

from typing import Final

import msgspec

from backend.epcis.formats import is_uri

CBV_WEB: Final = "https://ref.gs1.org/cbv/"
# Where CBV's own terms live (Web URIs and the EPCIS 1.x URNs): a value there must be one of its terms.
_CBV_NAMESPACES: Final = (
    "https://ref.gs1.org/cbv/",
    "http://ref.gs1.org/cbv/",
    "https://ns.gs1.org/cbv/",
    "http://ns.gs1.org/cbv/",
    "urn:epcglobal:cbv:",
)
# The GS1 Web Vocabulary namespace as the EPCIS 2.0 JSON-LD context binds the `gs1` prefix.
GS1_VOC: Final = "https://gs1.org/voc/"

BIZ_STEPS: Final = frozenset(
    [
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "sampling",
        "sensor_reporting",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
    ]
)
DISPOSITIONS: Final = frozenset(
    [
        "active",
        "available",
        "completeness_inferred",
        "completeness_verified",
        "conformant",
        "container_closed",
        "container_open",
        "damaged",
        "destroyed",
        "dispensed",
        "disposed",
        "encoded",
        "expired",
        "in_progress",
        "in_transit",
        "inactive",
        "mismatch_class",
        "mismatch_instance",
        "mismatch_quantity",
        "needs_replacement",
        "no_pedigree_match",
        "non_conformant",
        "non_sellable_other",
        "partially_dispensed",
        "recalled",
        "reserved",
        "retail_sold",
        "returned",
        "sellable_accessible",
        "sellable_not_accessible",
        "stolen",
        "unavailable",
        "unknown",
    ]
)
SOURCE_DESTINATION_TYPES: Final = frozenset({"owning_party", "possessing_party", "location"})
BIZ_TRANSACTION_TYPES: Final = frozenset(
    [
        "bol",
        "cert",
        "desadv",
        "inv",
        "pedigree",
        "po",
        "poc",
        "prodorder",
        "recadv",
        "rma",
        "testprd",
        "testres",
        "upevt",
    ]
)
ERROR_REASONS: Final = frozenset({"did_not_occur", "incorrect_data"})
COMPONENTS: Final = frozenset(
    [
        "x",
        "y",
        "z",
        "axial_distance",
        "azimuth",
        "height",
        "spherical_radius",
        "polar_angle",
        "elevation_angle",
        "easting",
        "northing",
        "latitude",
        "longitude",
        "altitude",
    ]
)
SENSOR_ALERT_TYPES: Final = frozenset({"ALARM_CONDITION", "ERROR_CONDITION"})
# GS1 Web Vocabulary measurement types a sensorReport may name.
MEASUREMENT_TYPES: Final = frozenset(
    [
        "AbsoluteHumidity",
        "AbsorbedDose",
        "AbsorbedDoseRate",
        "Acceleration",
        "Radioactivity",
        "Altitude",
        "AmountOfSubstance",
        "AmountOfSubstancePerUnitVolume",
        "Angle",
        "AngularAcceleration",
        "AngularMomentum",
        "AngularVelocity",
        "Area",
        "Capacitance",
        "Conductance",
        "Conductivity",
        "Count",
        "Density",
        "Dimensionless",
        "DoseEquivalent",
        "DoseEquivalentRate",
        "DynamicViscosity",
        "ElectricCharge",
        "ElectricCurrent",
        "ElectricCurrentDensity",
        "ElectricFieldStrength",
        "Energy",
        "Exposure",
        "Force",
        "Frequency",
        "Illuminance",
        "Inductance",
        "Irradiance",
        "KinematicViscosity",
        "Length",
        "LinearMomentum",
        "Luminance",
        "LuminousFlux",
        "LuminousIntensity",
        "MagneticFlux",
        "MagneticFluxDensity",
        "MagneticVectorPotential",
        "Mass",
        "MassConcentration",
        "MassFlowRate",
        "MassPerAreaTime",
        "MemoryCapacity",
        "MolalityOfSolute",
        "MolarEnergy",
        "MolarMass",
        "MolarVolume",
        "Power",
        "Pressure",
        "RadiantFlux",
        "RadiantIntensity",
        "RelativeHumidity",
        "Resistance",
        "Resistivity",
        "SolidAngle",
        "SpecificVolume",
        "Speed",
        "SurfaceDensity",
        "SurfaceTension",
        "Temperature",
        "Time",
        "Torque",
        "Voltage",
        "Volume",
        "VolumeFlowRate",
        "VolumeFraction",
        "VolumetricFlux",
        "Wavenumber",
    ]
)
# Units of measure (UN/CEFACT Recommendation 20) a temperature may be reported in.
TEMPERATURE_UOMS: Final = frozenset({"CEL", "FAH", "KEL"})


class Vocabulary(msgspec.Struct, frozen=True):
    """One CBV vocabulary: its terms, where they live on the web and in the old URN form, and how a
    person calls a value of it."""

    terms: frozenset[str]
    web_prefix: str
    urn_prefix: str | None
    label: str

    def bare(self, value: str) -> str | None:
        """The bare term for a bare, Web URI or URN value of this vocabulary; None when it is not one."""
        for prefix in (self.web_prefix, self.urn_prefix):
            if prefix and value.startswith(prefix):
                value = value[len(prefix) :]
                break
        return value if value in self.terms else None

    def web_uri(self, term: str) -> str:
        return self.web_prefix + term

    def is_custom(self, value: str) -> bool:
        """A value of one's own: an absolute URI outside CBV's namespaces (EPCIS 2.0 allows it where a
        business step, disposition, source/destination type, transaction type or error reason goes)."""
        if not is_uri(value) or ":" not in value or value.startswith(_CBV_NAMESPACES):
            return False
        scheme, _, rest = value.partition(":")
        # A word with a colon in it is no URI of one's own: http(s) needs an authority, urn a namespace.
        if scheme.lower() in ("http", "https"):
            return rest.startswith("//") and len(rest) > 2
        return bool(rest) and " " not in value


BIZ_STEP: Final = Vocabulary(BIZ_STEPS, CBV_WEB + "BizStep-", "urn:epcglobal:cbv:bizstep:", "business step")
DISPOSITION: Final = Vocabulary(DISPOSITIONS, CBV_WEB + "Disp-", "urn:epcglobal:cbv:disp:", "disposition")
SOURCE_DESTINATION_TYPE: Final = Vocabulary(
    SOURCE_DESTINATION_TYPES, CBV_WEB + "SDT-", "urn:epcglobal:cbv:sdt:", "source/destination type"
)
BIZ_TRANSACTION_TYPE: Final = Vocabulary(
    BIZ_TRANSACTION_TYPES, CBV_WEB + "BTT-", "urn:epcglobal:cbv:btt:", "business transaction type"
)
ERROR_REASON: Final = Vocabulary(ERROR_REASONS, CBV_WEB + "ER-", "urn:epcglobal:cbv:er:", "error reason")
COMPONENT: Final = Vocabulary(COMPONENTS, CBV_WEB + "Comp-", None, "sensor component")
SENSOR_ALERT_TYPE: Final = Vocabulary(SENSOR_ALERT_TYPES, GS1_VOC, None, "sensor alert type")
MEASUREMENT_TYPE: Final = Vocabulary(MEASUREMENT_TYPES, GS1_VOC, None, "measurement type")
