"""The vein-to-vein record as a PDF (reportlab): what a QA person files and an inspector reads. Every
custody event in order with actor, site, time and signatures (printed name, time, meaning), each leg's
temperature chart, the alerts and how they were handled, whether anything was corrected after first
entry, and the chain verdict with the final hash. Also what a QA reviewer checks before signing: the
receipt checklists and comments, seals and waybills, storage locations, device time and GPS, each event's
hash, the product's genealogy, deviations accepted by QA override, a cancellation's reason, and the
"record reviewed" block QA signs electronically. Times are UTC and say so, with the site's local time
beside them."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any, Final
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from backend.reports.case_fields import trial_rows
from backend.reports.chart import temperature_chart
from backend.reports.record import AlertLine, CaseRecord, EventLine, SignatureLine, TemperatureLeg, local_time

_MARGIN: Final = 16 * mm
_GRID: Final = TableStyle(
    [
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.92, 0.95)),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONTSIZE", (0, 0), (-1, -1), 7.5),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
)


def _utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


class _Styles:
    def __init__(self) -> None:
        base = getSampleStyleSheet()
        self.title = base["Title"]
        self.h2 = base["Heading2"]
        self.h3 = base["Heading3"]
        self.body = ParagraphStyle("body", parent=base["BodyText"], fontSize=8.5, leading=10.5)
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=7.5, leading=9)
        self.mono = ParagraphStyle("mono", parent=self.body, fontName="Courier", fontSize=8, leading=10)
        self.verdict_ok = ParagraphStyle("ok", parent=self.body, textColor=colors.Color(0, 0.45, 0.1))
        self.verdict_bad = ParagraphStyle("bad", parent=self.body, textColor=colors.Color(0.75, 0, 0))


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(text, style)


def _t(value: Any) -> str:
    return escape("" if value is None else str(value))


def render_pdf(record: CaseRecord) -> bytes:
    buffer = io.BytesIO()
    styles = _Styles()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN + 4 * mm,
        title=f"Vein-to-vein record {record.coi}",
        author="Celltrail",
        subject="Chain of identity, chain of custody and cold chain record",
    )
    width = A4[0] - 2 * _MARGIN
    story: list[Any] = [
        _p(f"Vein-to-vein record {_t(record.eye_readable)}", styles.title),
        *_case_section(record, styles, width),
        *_verdict_section(record, styles),
        *_units_section(record, styles, width),
        *_products_section(record, styles),
        *_events_section(record, styles, width),
        *_temperature_section(record, styles),
        *_genealogy_section(record, styles),
        *_deviations_section(record, styles),
        *_alerts_section(record, styles, width),
        *_review_section(record, styles),
        Spacer(1, 4 * mm),
        _p(
            f"Generated {_utc(record.generated_at)} for {_t(record.generated_for)} from the Celltrail "
            "record. Times are UTC; the local time of the event's site stands beside them.",
            styles.body,
        ),
    ]
    footer = f"Celltrail vein-to-vein record COI {record.coi} - generated {_utc(record.generated_at)}"
    document.build(story, canvasmaker=_numbered(footer))
    return buffer.getvalue()


def _case_section(record: CaseRecord, styles: _Styles, width: float) -> list[Any]:
    site = record.site(record.treatment_site)
    if record.patient_withheld:
        patient = "withheld: not visible to the requester (need-to-know, treatment site only)"
    elif record.patient is None:
        patient = "none recorded"
    else:
        fields = record.patient
        patient = f"reference {_t(fields.patient_ref or '-')}, birth year {_t(fields.birth_year or '-')}"
    rows = [
        ["COI", _p(f"{_t(record.coi)} (barcode content {_t(record.barcode)})", styles.cell)],
        ["Therapy", _p(_t(record.therapy), styles.cell)],
        *([name, _p(_t(text), styles.cell)] for name, text in trial_rows(record.trial)),
        [
            "Treatment site",
            _p(_t(f"{record.treatment_site} - {site.name}" if site else record.treatment_site), styles.cell),
        ],
        ["Case status", record.status],
        [
            "Opened",
            _p(
                _utc(record.created_at)
                + (f" ({_t(local_time(record.created_at, site.time_zone))})" if site else ""),
                styles.cell,
            ),
        ],
        *(
            [
                [
                    "Cancelled",
                    _p(
                        f"event #{record.cancellation.seq}, {_utc(record.cancellation.at)}, by "
                        f"{_t(record.cancellation.by)}. Reason: {_t(record.cancellation.reason)}",
                        styles.cell,
                    ),
                ]
            ]
            if record.cancellation
            else []
        ),
        ["Patient fields", _p(patient, styles.cell)],
    ]
    table = Table(rows, colWidths=[35 * mm, width - 35 * mm])
    table.setStyle(
        TableStyle([("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("FONTSIZE", (0, 0), (-1, -1), 8)])
    )
    return [table, Spacer(1, 3 * mm)]


def _verdict_section(record: CaseRecord, styles: _Styles) -> list[Any]:
    chain = record.chain
    if chain.ok:
        verdict = _p(f"<b>Chain verification: VERIFIED</b> - {_t(chain.message)}.", styles.verdict_ok)
    elif chain.status == "unverifiable":
        verdict = _p(
            f"<b>Chain verification: UNVERIFIABLE</b> - {_t(chain.message)}. Not verified: the record key "
            "this chain was linked with is not available to the server that printed this.",
            styles.verdict_bad,
        )
    else:
        reason = (chain.first_break or {}).get("reason", "")
        verdict = _p(
            f"<b>Chain verification: FAILED</b> - {_t(chain.message)}: {_t(reason)}. "
            "The record below may have been altered outside Celltrail.",
            styles.verdict_bad,
        )
    if record.corrected:
        items = "; ".join(
            f"event #{c.seq} by {_t(c.actor)} on {_utc(c.at)} corrects event "
            f"#{c.corrects_seq or c.corrects_event_id} ({_t(c.reason or 'no reason given')})"
            for c in record.corrections
        )
        corrections = _p(
            f"<b>Corrected after first entry: YES</b> - {len(record.corrections)} correction(s): {items}. "
            "Corrected entries are kept unchanged; each correction is a later event.",
            styles.body,
        )
    else:
        corrections = _p(
            "<b>Corrected after first entry: NO</b> - no entry was corrected after first entry.", styles.body
        )
    return [
        _p("Integrity", styles.h2),
        verdict,
        _p(f"Final hash (head of the chain after {chain.events} events):", styles.body),
        _p(_t(chain.head_hash or "-"), styles.mono),
        _p(f"External checkpoint: {_t(chain.checkpoint)}.", styles.body),
        corrections,
        Spacer(1, 3 * mm),
    ]


def _units_section(record: CaseRecord, styles: _Styles, width: float) -> list[Any]:
    rows: list[list[Any]] = [["Unit", "Product", "Status", "Where", "Flags"]]
    for unit in record.units:
        flags = ", ".join(
            f for f, on in (("QA released", unit.released), ("quarantined", unit.quarantined)) if on
        )
        where = unit.site or "in transit"
        if unit.storage_location:
            where += f" ({unit.storage_location})"
        rows.append(
            [
                _p(_t(unit.id) + (f"<br/>DIN {_t(unit.din)}" if unit.din else ""), styles.cell),
                _p(_t(unit.product), styles.cell),
                unit.status,
                _p(_t(where), styles.cell),
                _p(_t(flags or "-"), styles.cell),
            ]
        )
    table = Table(rows, colWidths=[48 * mm, 38 * mm, 22 * mm, width - 148 * mm, 40 * mm], repeatRows=1)
    table.setStyle(_GRID)
    return [_p("Units", styles.h2), table]


def _products_section(record: CaseRecord, styles: _Styles) -> list[Any]:
    """The catalogue's limits of the case's products, and each product bag's manufacture and expiry."""
    if not record.products:
        return []
    lines = [
        f"{_t(p.code)} ({_t(p.name)}): infuse within {p.thaw_to_infusion_min} min of thawing; store at "
        f"{p.storage_min_c} °C to {p.storage_max_c} °C; shelf life {p.shelf_life_days} days from manufacture."
        for p in record.products
    ]
    for unit in record.units:
        if unit.catalogue_product:
            made = _utc(unit.manufactured_at) if unit.manufactured_at else "-"
            expires = _utc(unit.expires_at) if unit.expires_at else "-"
            lines.append(f"{_t(unit.id)}: {_t(unit.catalogue_product)}, made {made}, expires {expires}.")
    return [_p("Product limits", styles.h2), *[_p(line, styles.body) for line in lines]]


def _event_details(event: EventLine, record: CaseRecord) -> str:
    seq_of = {e.id: e.seq for e in record.events}
    lines = [_t(event.detail)]
    if event.outcome == "refused":
        lines.insert(0, f"<b>REFUSED ({_t(event.refusal)})</b>")
    if event.counterpart:
        lines.append(f"Counterpart: {_t(event.counterpart)}")
    if event.shipment_id:
        lines.append(f"Shipment {_t(event.shipment_id)}")
    if event.unit_ids:
        lines.append("Units: " + _t(", ".join(event.unit_ids)))
    lines += _data_details(event)
    for signature in event.signatures:
        lines.append(_signed(signature))
    if event.corrects is not None:
        lines.append(f"<b>Corrects event #{seq_of.get(event.corrects, event.corrects)}</b>")
    if event.corrected_by:
        later = ", ".join(f"#{seq_of.get(i, i)}" for i in event.corrected_by)
        lines.append(f"<b>Corrected later by event {later}</b>")
    if event.device_time:
        lines.append(f"Device time: {_utc(event.device_time)}")
    if isinstance(event.gps, dict) and event.gps.get("lat") is not None:
        lines.append(f"GPS: {_t(event.gps.get('lat'))}, {_t(event.gps.get('lon'))}")
    lines.append(f'Hash: <font name="Courier" size="5.5">{_t(event.hash)}</font>')
    return "<br/>".join(lines)


def _signed(signature: SignatureLine) -> str:
    """Who signed, as whom and what: the role the signature was given in is named as such."""
    return (
        f"Signed by <b>{_t(signature.printed_name)}</b> (user {_t(signature.username)}) as "
        f"<b>{_t(signature.role)}</b> - meaning: <b>{_t(signature.meaning)}</b> - {_utc(signature.signed_at)}"
    )


def _yes(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "NO"
    return _t(value)


# Keys of an event's data printed in words, in this order; others are printed as they are.
_DATA_WORDS: Final = (
    ("decision", "Decision"),
    ("comment", "Comment"),
    ("deviation", "QA override deviation"),
    ("excursion_alerts", "Alerts overridden"),
    ("container_id", "Container"),
    ("logger_id", "Logger"),
    ("profile", "Profile"),
    ("seals", "Seals"),
    ("waybill", "Waybill"),
    ("storage_location", "Storage location"),
    ("from_units", "Made from"),
    ("into", "Consumed into"),
    ("reason", "Reason"),
    ("expires_at", "Expires"),
    ("events", "Events reviewed"),
    ("head_hash", "Head hash reviewed"),
)
# Printed elsewhere (the correction's fields in the integrity section) or not a reader's concern.
_DATA_SKIPPED: Final = frozenset({"fields", "kind", "product", "din", "therapy", "treatment_site"})


def _data_details(event: EventLine) -> list[str]:
    data = event.data if isinstance(event.data, dict) else {}
    lines = []
    checklist = data.get("checklist")
    if isinstance(checklist, dict) and checklist:
        answers = "; ".join(f"{_t(k.replace('_', ' '))}: {_yes(v)}" for k, v in sorted(checklist.items()))
        lines.append(f"Checklist: {answers}")
    named = dict(_DATA_WORDS)
    for key, label in _DATA_WORDS:
        if key == "events" and event.action != "record_reviewed":
            continue
        value = data.get(key)
        if value is None or value == "" or value == []:
            continue
        shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        lines.append(f"{label}: {_t(shown)}")
    for key in sorted(data):
        if (
            (key in named and (key != "events" or event.action == "record_reviewed"))
            or key in _DATA_SKIPPED
            or key == "checklist"
            or data[key] in (None, "", [], {})
        ):
            continue
        lines.append(f"{_t(key.replace('_', ' '))}: {_t(data[key])}")
    return lines


def _events_section(record: CaseRecord, styles: _Styles, width: float) -> list[Any]:
    rows: list[list[Any]] = [["#", "Time (UTC, local)", "Step", "Who, where", "Details and signatures"]]
    for event in record.events:
        site = record.site(event.site)
        local = f"<br/>{_t(event.local_time)}" if event.local_time else ""
        rows.append(
            [
                str(event.seq),
                _p(_utc(event.server_time).replace(" UTC", "") + local, styles.cell),
                _p(_t(event.action.replace("_", " ")), styles.cell),
                _p(
                    f"{_t(event.actor)}<br/>{_t(event.site)}" + (f" ({_t(site.name)})" if site else ""),
                    styles.cell,
                ),
                _p(_event_details(event, record), styles.cell),
            ]
        )
    table = Table(rows, colWidths=[8 * mm, 24 * mm, 22 * mm, 34 * mm, width - 88 * mm], repeatRows=1)
    table.setStyle(_GRID)
    return [_p("Custody events", styles.h2), table]


def _genealogy_section(record: CaseRecord, styles: _Styles) -> list[Any]:
    if not record.genealogy:
        text = "No product bag of this case names the starting material it was made from."
        return [_p("Genealogy", styles.h2), _p(text, styles.body)]
    lines = [
        f"Product <b>{_t(g.product)}</b> made from {_t(', '.join(g.inputs))} (consumed) - registered at "
        f"{_t(g.site)} by {_t(g.registered_by)}, {_utc(g.registered_at)}, event #{g.seq}"
        for g in record.genealogy
    ]
    return [_p("Genealogy", styles.h2), *[_p(line, styles.body) for line in lines]]


def _deviations_section(record: CaseRecord, styles: _Styles) -> list[Any]:
    parts: list[Any] = [_p("Holds and deviations", styles.h2)]
    if not record.holds:
        parts.append(_p("No unit was put on hold or quarantined.", styles.body))
    for h in record.holds:
        signed = "".join(f"<br/>{_signed(s)}" for s in h.signatures)
        parts.append(
            _p(
                f"Event #{h.seq}, {_utc(h.at)}: {_t(', '.join(h.unit_ids))} <b>{_t(h.what)}</b> by "
                f"{_t(h.by)}. Reason: {_t(h.reason or '-')}{signed}",
                styles.body,
            )
        )
    if not record.deviation_records:
        parts.append(_p("No deviation was recorded by QA.", styles.body))
    for r in record.deviation_records:
        signed = "".join(f"<br/>{_signed(s)}" for s in r.signatures)
        concerns = ", ".join(f"#{n}" for n in r.concerns) or "-"
        parts.append(
            _p(
                f"Deviation, event #{r.seq}, {_utc(r.at)}, by {_t(r.by)}: <b>{_t(r.description)}</b>. "
                f"Impact: {_t(r.impact)}. Disposition: <b>{_t(r.disposition)}</b>. Concerns events "
                f"{concerns}{signed}",
                styles.body,
            )
        )
    if not record.deviations:
        parts.append(_p("No delivery was accepted by QA override.", styles.body))
    for d in record.deviations:
        alerts = ", ".join(f"#{a}" for a in d.alerts) or "-"
        signed = "<br/>".join(_signed(s) for s in d.signatures)
        parts.append(
            _p(
                f"Event #{d.seq}, shipment {_t(d.shipment_id or '-')}, {_utc(d.at)}: accepted with "
                f"deviation <b>{_t(d.deviation)}</b> (alerts overridden: {alerts})<br/>{signed}",
                styles.body,
            )
        )
    return parts


def _review_section(record: CaseRecord, styles: _Styles) -> list[Any]:
    parts: list[Any] = [_p("Record review", styles.h2)]
    if not record.reviews:
        parts.append(
            _p(
                "<b>Record reviewed: NOT YET</b> - QA signs the review electronically (meaning "
                "'record reviewed') once it has checked this record.",
                styles.body,
            )
        )
        return parts
    for review in record.reviews:
        who = _signed(review.signature) if review.signature else "unsigned"
        later = (
            f"{review.later_events} event(s) were recorded after this review and are not covered by it."
            if review.later_events
            else "No event was recorded after this review."
        )
        local = f" ({_t(review.local_time)})" if review.local_time else ""
        parts += [
            _p(f"<b>Record reviewed</b> - event #{review.seq}{local}", styles.body),
            _p(who, styles.body),
            _p(
                f"Covers events 1 to {review.events_reviewed}; head hash reviewed: "
                f'<font name="Courier" size="7">{_t(review.head_hash or "-")}</font>',
                styles.body,
            ),
            _p(
                (f"Comment: {_t(review.comment)}. " if review.comment else "No comment. ") + later,
                styles.body,
            ),
        ]
    return parts


def _limits(low: float | None, high: float | None) -> str:
    if low is None and high is None:
        return "none"
    if low is None:
        return f"at or below {high} °C"
    if high is None:
        return f"at or above {low} °C"
    return f"{low} to {high} °C"


def _leg_block(leg: TemperatureLeg, styles: _Styles) -> list[Any]:
    s = leg.summary
    limits = _limits(leg.low_c, leg.high_c)
    facts = (
        f"{_t(leg.from_site)} to {_t(leg.to_site)}, container {_t(leg.container_id)}, logger "
        f"{_t(leg.logger_id or 'none')}, profile {_t(leg.profile)} (limits {limits}), "
        f"status {_t(leg.status)}; "
        f"departed {_utc(leg.departed_at)}, received {_utc(leg.received_at)}."
    )
    if s.readings:
        figures = (
            f"{s.readings} readings {_utc(s.first)} to {_utc(s.last)}: "
            f"min {s.min_c:.1f} °C, max {s.max_c:.1f} °C, "
            f"mean {s.mean_c:.1f} °C"
            + (f", MKT {s.mkt_c:.1f} °C" if s.mkt_c is not None else "")
            + f"; {s.minutes_above:.0f} min above, {s.minutes_below:.0f} min below the range."
        )
        if s.gaps:
            # Data gaps (issue 20): time no reading covers, counted neither in nor out of range.
            figures += (
                f" {s.uncovered_minutes:.0f} min without data: "
                + "; ".join(f"no data from {_utc(start)} to {_utc(end)}" for start, end in s.gaps)
                + "."
            )
    else:
        figures = "No readings recorded for this leg."
    if leg.excursions:
        excursions = "<br/>".join(
            f"Excursion {e.side} {e.limit_c} °C from {_utc(e.start)} to {_utc(e.end)}"
            f"{' (still out of range at the last reading)' if e.ongoing else ''}: peak {e.peak_c:.1f} °C, "
            f"{e.minutes:.0f} min"
            for e in leg.excursions
        )
    else:
        excursions = "No excursion beyond the profile's limits in the readings."
    if leg.temperature_alerts:
        excursions += "<br/>Temperature alerts: " + ", ".join(f"#{i}" for i in leg.temperature_alerts)
    block: list[Any] = [
        _p(f"Leg {_t(leg.shipment_id)}" + (" - ALARM" if leg.alarm else ""), styles.h3),
        _p(facts, styles.body),
        _p(figures, styles.body),
        temperature_chart(leg),
        _p(excursions, styles.body),
    ]
    if leg.readings_truncated:
        block.append(_p("Only the first readings are charted; the CSV export has them all.", styles.body))
    return [KeepTogether(block), Spacer(1, 3 * mm)]


def _temperature_section(record: CaseRecord, styles: _Styles) -> list[Any]:
    if not record.legs:
        return [_p("Temperature", styles.h2), _p("No shipment legs.", styles.body)]
    return [_p("Temperature", styles.h2), *[part for leg in record.legs for part in _leg_block(leg, styles)]]


def handling(alert: AlertLine) -> str:
    """How an alert was handled, in words."""
    steps = []
    if alert.acknowledged_at:
        steps.append(
            f"Acknowledged by {alert.acknowledged_by or 'unknown'} at {_utc(alert.acknowledged_at)}: "
            f'"{alert.ack_comment or ""}"'
        )
    if alert.status == "resolved":
        steps.append(f"Resolved at {_utc(alert.ended_at)} (the condition ended)")
    if alert.closed_at:
        steps.append(
            f"Closed by {alert.closed_by or 'unknown'} at {_utc(alert.closed_at)}: "
            f'"{alert.close_reason or ""}"'
        )
    if not steps:
        steps.append("Open - not yet acknowledged")
    return "; ".join(steps)


def _alerts_section(record: CaseRecord, styles: _Styles, width: float) -> list[Any]:
    if not record.alerts:
        return [_p("Alerts", styles.h2), _p("No alerts were raised for this case.", styles.body)]
    rows: list[list[Any]] = [["#", "Raised (UTC)", "Alert", "Handling"]]
    for alert in record.alerts:
        rows.append(
            [
                str(alert.id),
                _p(_utc(alert.started_at).replace(" UTC", ""), styles.cell),
                _p(
                    f"<b>{_t(alert.severity)} {_t(alert.kind)}</b> ({_t(alert.status)})<br/>"
                    f"{_t(alert.title)}<br/>"
                    f"{_t(alert.detail)}",
                    styles.cell,
                ),
                _p(_t(handling(alert)), styles.cell),
            ]
        )
    table = Table(
        rows, colWidths=[10 * mm, 24 * mm, (width - 34 * mm) * 0.55, (width - 34 * mm) * 0.45], repeatRows=1
    )
    table.setStyle(_GRID)
    return [_p("Alerts", styles.h2), table]


def _numbered(footer: str) -> type[Canvas]:
    """A canvas that writes 'page N of M' on every page (M is known only once all pages are laid out)."""

    class NumberedCanvas(Canvas):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont("Helvetica", 7)
                self.setFillColor(colors.grey)
                self.drawString(_MARGIN, 9 * mm, footer)
                self.drawRightString(A4[0] - _MARGIN, 9 * mm, f"page {self._pageNumber} of {total}")
                super().showPage()
            super().save()

    return NumberedCanvas
