"""The EPCIS Event Hash ID of CBV 2.0 (section "EPCIS Event Hash ID"): a canonical pre-hash string built
from the event's fields in a fixed order, hashed with SHA-256 and written as an RFC 6920 `ni` URI,
`ni:///sha-256;<hex>?ver=CBV2.0`. The same event yields the same ID whatever the key order, the time
zone its times are written in or the URI form (EPC URN or Digital Link) of its identifiers.

The rules, in short: `key=value` pairs without separators in the canonical property order; list entries
sorted as strings; times in UTC with milliseconds; bare CBV terms expanded to their Web URIs; EPC URIs as
constrained canonical GS1 Digital Link; numbers without trailing zeros; user extensions as
`{namespace}name=value`, sorted, at the end. In CBV 2.0 the `sensorElementList` name itself is not
written, and extensions inside `readPoint`/`bizLocation` go to the trailing block after their field's
name. `eventID`, `recordTime`, `errorDeclaration` and `certificationInfo` are not part of the hash."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from backend.epcis import digital_link, vocabulary
from backend.epcis.formats import hash_timestamp

VERSION: Final = "CBV2.0"
EPCIS_CONTEXT_URL: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
# Prefixes the standard EPCIS context binds; a document's own @context adds to these.
STANDARD_PREFIXES: Final = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": vocabulary.CBV_WEB,
    "gs1": vocabulary.GS1_VOC,
}
_NOT_HASHED: Final = frozenset(
    {"@context", "type", "eventID", "recordTime", "errorDeclaration", "certificationInfo"}
)
_EPC_LISTS: Final = ("epcList", "parentID", "inputEPCList", "childEPCs")
_PLACES: Final = ("readPoint", "bizLocation")
_QUANTITY_LISTS: Final = ("quantityList", "childQuantityList", "inputQuantityList")
_METADATA_ORDER: Final = (
    "time",
    "startTime",
    "endTime",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
)
_REPORT_ORDER: Final = (
    "type",
    "exception",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "time",
    "microorganism",
    "chemicalSubstance",
    "value",
    "component",
    "stringValue",
    "booleanValue",
    "hexBinaryValue",
    "uriValue",
    "minValue",
    "maxValue",
    "meanValue",
    "sDev",
    "percRank",
    "percValue",
    "uom",
    "coordinateReferenceSystem",
)
_STANDARD: Final = frozenset(
    {
        *_NOT_HASHED,
        "eventTime",
        "eventTimeZoneOffset",
        *_EPC_LISTS,
        *_QUANTITY_LISTS,
        "outputEPCList",
        "outputQuantityList",
        "action",
        "transformationID",
        "bizStep",
        "disposition",
        "persistentDisposition",
        "readPoint",
        "bizLocation",
        "bizTransactionList",
        "sourceList",
        "destinationList",
        "sensorElementList",
        "ilmd",
    }
)
_NUMBER: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def event_hash_id(event: Mapping[str, Any], context: Any = None) -> str:
    """`ni:///sha-256;<hex>?ver=CBV2.0` for one event; `context` is the enclosing document's @context."""
    digest = hashlib.sha256(prehash(event, context).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={VERSION}"


def prehash(event: Mapping[str, Any], context: Any = None) -> str:
    return _Canonicaliser(_prefixes(context, event.get("@context"))).event(event)


def _prefixes(*contexts: Any) -> dict[str, str]:
    prefixes = dict(STANDARD_PREFIXES)
    for context in contexts:
        entries = context if isinstance(context, list) else [context]
        for entry in entries:
            if isinstance(entry, Mapping):
                prefixes.update({k: v for k, v in entry.items() if isinstance(v, str)})
    return prefixes


def _number(value: float | int) -> str:
    # No trailing zeros, no quotes: 1.0 -> "1", 0.3434 -> "0.3434".
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return str(float(value))


class _Canonicaliser:
    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefixes = prefixes

    # ----------------------------------------------------------------------------------------- values

    def value(self, raw: Any) -> str:
        """A plain value: numbers normalised, CBV URNs as Web URIs, CURIEs expanded, EPCs as Digital Link."""
        if isinstance(raw, bool | int | float):
            return _number(raw)
        text = str(raw).strip()
        # XML carries no types: a value that reads as a number is hashed as a number in both syntaxes.
        if _NUMBER.fullmatch(text):
            return _number(float(text)) if any(c in text for c in ".eE") else str(int(text))
        for vocab in (
            vocabulary.BIZ_STEP,
            vocabulary.DISPOSITION,
            vocabulary.SOURCE_DESTINATION_TYPE,
            vocabulary.BIZ_TRANSACTION_TYPE,
            vocabulary.ERROR_REASON,
        ):
            if vocab.urn_prefix and text.startswith(vocab.urn_prefix):
                return vocab.web_prefix + text[len(vocab.urn_prefix) :]
        text = self.expand_curie(text)
        return digital_link.canonical(text) or text

    def term(self, raw: Any, vocab: vocabulary.Vocabulary) -> str:
        """A value of a vocabulary: a bare standard term becomes its Web URI."""
        text = str(raw).strip()
        return vocab.web_uri(text) if text in vocab.terms else self.value(text)

    def expand_curie(self, text: str) -> str:
        prefix, colon, rest = text.partition(":")
        if colon and not rest.startswith("//") and prefix in self.prefixes:
            return self.prefixes[prefix] + rest
        return text

    def key(self, name: str) -> str:
        """An extension's name as `{namespace}local`."""
        prefix, colon, local = name.partition(":")
        if colon and prefix in self.prefixes:
            return "{" + self.prefixes[prefix] + "}" + local
        if name.startswith(("http://", "https://")):
            namespace, _, local = name.rpartition("/")
            return "{" + namespace + "/}" + local
        return name

    def extensions(self, name: str, raw: Any) -> list[str]:
        """One entry per value (a list gives several entries with the same name); children sorted."""
        key = self.key(name)
        if isinstance(raw, list):
            return [entry for item in raw for entry in self.extensions(name, item)]
        if isinstance(raw, Mapping):
            children = [e for k, v in raw.items() if k not in ("@context",) for e in self.extensions(k, v)]
            return [key + "".join(sorted(children))]
        text = self.value(raw)
        return [key + ("=" + text if text else "")]

    # ------------------------------------------------------------------------------------------ parts

    def fields(self, obj: Mapping[str, Any], order: Iterable[str], render: Callable[[str, Any], str]) -> str:
        return "".join(f"{name}={render(name, obj[name])}" for name in order if obj.get(name) is not None)

    def timed(self, name: str, raw: Any) -> str:
        return hash_timestamp(str(raw)) if "time" in name.lower() else self.value(raw)

    def report(self, report: Mapping[str, Any]) -> str:
        def render(name: str, raw: Any) -> str:
            if name == "type":
                return self.term(raw, vocabulary.MEASUREMENT_TYPE)
            if name == "exception":
                return self.term(raw, vocabulary.SENSOR_ALERT_TYPE)
            if name == "component":
                return self.term(raw, vocabulary.COMPONENT)
            return self.timed(name, raw)

        own = self.fields(report, _REPORT_ORDER, render)
        return "sensorReport" + own + self.inline_extensions(report, _REPORT_ORDER)

    def sensor_element(self, element: Mapping[str, Any]) -> str:
        text = "sensorElement"
        metadata = element.get("sensorMetadata")
        if isinstance(metadata, Mapping):
            text += "sensorMetadata" + self.fields(metadata, _METADATA_ORDER, self.timed)
            text += self.inline_extensions(metadata, _METADATA_ORDER)
        reports = element.get("sensorReport") or []
        text += "".join(sorted(self.report(r) for r in reports if isinstance(r, Mapping)))
        return text + self.inline_extensions(element, ("sensorMetadata", "sensorReport"))

    def inline_extensions(self, obj: Mapping[str, Any], known: Iterable[str]) -> str:
        standard = set(known)
        return "".join(sorted(e for k, v in obj.items() if k not in standard for e in self.extensions(k, v)))

    def typed_list(self, name: str, item: str, entries: Any, vocab: vocabulary.Vocabulary) -> str:
        rendered = []
        for entry in entries or []:
            if not isinstance(entry, Mapping):
                continue
            text = f"type={self.term(entry['type'], vocab)}" if entry.get("type") else ""
            if entry.get(item) is not None:
                text += f"{item}={self.value(entry[item])}"
            rendered.append(text)
        return name + "".join(sorted(rendered)) if rendered else ""

    def quantities(self, name: str, entries: Any) -> str:
        rendered = [
            "quantityElement" + self.fields(q, ("epcClass", "quantity", "uom"), lambda _n, v: self.value(v))
            for q in entries or []
            if isinstance(q, Mapping)
        ]
        return name + "".join(sorted(rendered)) if rendered else ""

    # ------------------------------------------------------------------------------------------ event

    def event(self, event: Mapping[str, Any]) -> str:
        # The canonical property order of CBV 2.0: every part renders to "" when its field is absent.
        parts = [
            f"eventType={str(event.get('type', '')).strip()}",
            self.optional(event, "eventTime", lambda raw: hash_timestamp(str(raw))),
            self.optional(event, "eventTimeZoneOffset", lambda raw: str(raw).strip()),
            self.epcs("epcList", event.get("epcList")),
            self.optional(event, "parentID", self.value),
            self.epcs("inputEPCList", event.get("inputEPCList")),
            self.epcs("childEPCs", event.get("childEPCs")),
            *[self.quantities(name, event.get(name)) for name in _QUANTITY_LISTS],
            self.epcs("outputEPCList", event.get("outputEPCList")),
            self.quantities("outputQuantityList", event.get("outputQuantityList")),
            self.optional(event, "action", self.value),
            self.optional(event, "transformationID", self.value),
            self.optional(event, "bizStep", lambda raw: self.term(raw, vocabulary.BIZ_STEP)),
            self.optional(event, "disposition", lambda raw: self.term(raw, vocabulary.DISPOSITION)),
            self.persistent_disposition(event.get("persistentDisposition")),
            *[self.place_id(name, event.get(name)) for name in _PLACES],
            self.typed_list(
                "bizTransactionList",
                "bizTransaction",
                event.get("bizTransactionList"),
                vocabulary.BIZ_TRANSACTION_TYPE,
            ),
            *[
                self.typed_list(name, item, event.get(name), vocabulary.SOURCE_DESTINATION_TYPE)
                for name, item in (("sourceList", "source"), ("destinationList", "destination"))
            ],
            self.sensor_elements(event.get("sensorElementList")),
            self.ilmd(event.get("ilmd")),
            self.trailing(event),
        ]
        return "".join(parts)

    def optional(self, event: Mapping[str, Any], name: str, render: Callable[[Any], str]) -> str:
        return f"{name}={render(event[name])}" if event.get(name) is not None else ""

    def epcs(self, name: str, values: Any) -> str:
        return name + "".join(sorted(f"epc={self.value(e)}" for e in values)) if values else ""

    def persistent_disposition(self, persistent: Any) -> str:
        if not isinstance(persistent, Mapping):
            return ""
        text = "".join(
            "".join(
                sorted(f"{part}={self.term(d, vocabulary.DISPOSITION)}" for d in persistent.get(part) or [])
            )
            for part in ("set", "unset")
        )
        return "persistentDisposition" + text if text else ""

    def place_id(self, name: str, place: Any) -> str:
        if isinstance(place, Mapping) and place.get("id") is not None:
            return f"{name}id={self.value(place['id'])}"
        return ""

    def sensor_elements(self, elements: Any) -> str:
        # CBV 2.0 writes the elements without the `sensorElementList` name.
        return "".join(sorted(self.sensor_element(e) for e in elements or [] if isinstance(e, Mapping)))

    def ilmd(self, ilmd: Any) -> str:
        if not (isinstance(ilmd, Mapping) and ilmd):
            return ""
        return "ilmd" + "".join(sorted(e for k, v in ilmd.items() for e in self.extensions(k, v)))

    def trailing(self, event: Mapping[str, Any]) -> str:
        """User extensions, sorted together: the event's own and those nested in its places (after the
        place's name)."""
        entries = [e for k, v in event.items() if k not in _STANDARD for e in self.extensions(k, v)]
        for name in _PLACES:
            place = event.get(name)
            if isinstance(place, Mapping) and (nested := self.inline_extensions(place, ("id",))):
                entries.append(name + nested)
        return "".join(sorted(entries))
