"""``celltrail label``: render bag, shipment, wristband, sample and asset labels to a file or a printer.

Examples::

    celltrail label bag --coi '&/CHG123426A1B2C3' --unit PRC-01 --din '=G12341765432170' \\
        --product 'Autologous CAR-T cells' --product-code S1395V00 --lot L2026-0042 --volume '68 mL' \\
        --expiry 2026-03-14T23:59Z --format png --out bag.png
    celltrail label shipment --shipment SHP-2026-000123 --from 'Site A' --to 'City Hospital' \\
        --profile cryo --sscc '(00)106141411234567897' --mark this-way-up --format zpl --print zebra1:9100
    celltrail label wristband --coi 'CH G1234 26 A1B2C3 [4]' --patient-name 'Anna Muster' --dob 1971-05-02 \\
        --hospital-number 4711-0815 --require name --require dob --format pdf --cups ward7
    celltrail label asset --giai '(8004)0614141LN2-7' --description 'LN2 dry shipper' --out tag.zpl

A clinical trial's bag and wristband (the investigational statement; the bag on 4 x 4 in stock), and a
biobank sample's tube label::

    celltrail label bag --unit CHG123426A1B2C3-PRC-01 --product 'CAR-T (investigational)' \\
        --expiry 2026-03-14 --trial 2024-512345-12-00 --protocol CARTALPHA-01 --trial-site CH-03 \\
        --subject 03-0017 --sponsor 'Celltrail Academic Network' --out bag.pdf
    celltrail label wristband --coi '&/CHG123426A1B2C3' --trial 2024-512345-12-00 \\
        --protocol CARTALPHA-01 --trial-site CH-03 --subject 03-0017 --sponsor 'Celltrail Academic Network' \\
        --out band.pdf
    celltrail label sample --unit CHG123426A1B2C3-SMP-01 --description 'Retained product' \\
        --trial 2024-512345-12-00 --out tube.zpl
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import TypeVar

from celltrail_shared.identifiers import (
    Coi,
    Din,
    Giai,
    IdentifierError,
    LoggerId,
    ShipmentId,
    Sscc,
    UnitId,
    parse_coi,
    parse_din,
    parse_identifier,
)
from labels.formats import FORMATS
from labels.model import (
    DEFAULT_STORAGE_TEMP,
    AssetTag,
    BagLabel,
    HandlingMark,
    Label,
    PatientField,
    SampleLabel,
    ShipmentLabel,
    TemperatureProfile,
    TrialStatement,
    WristbandLabel,
    parse_product_code,
)
from labels.stock import STOCKS, SUPPORTED_DPI, get_stock

# The stocks of labels.investigational (named here so that parsing arguments loads no renderer).
KIND_STOCKS = ("bag-4x4", "sample-2x1")
# --trial and its companions: all or none (dest, option, help).
TRIAL_OPTIONS = (
    ("trial_protocol", "--protocol", "the trial's protocol code"),
    ("trial_site", "--trial-site", "the trial site number"),
    ("trial_subject", "--subject", "the subject identifier (the patient's pseudonym in the trial)"),
    ("trial_sponsor", "--sponsor", "the trial's sponsor"),
)
ZPL_DEFAULT_DPI = 203  # most Zebra desktop and industrial printers
IMAGE_DEFAULT_DPI = 300

T = TypeVar("T")


def _identifier_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type=`` that turns an :class:`IdentifierError` into a usage error with its reason."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except IdentifierError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    convert.__name__ = parse.__name__
    return convert


def _parse_unit(text: str) -> UnitId | str:
    """A full unit id, or the short ``KIND-NN`` form to combine with --coi."""
    if "-" in text and text.upper().startswith("CH"):
        return UnitId.parse(text)
    return text


def _parse_sscc(text: str) -> Sscc:
    if len(text) == 18 and text.isdigit():
        return Sscc(digits=text)
    identifier = parse_identifier(text)
    if not isinstance(identifier, Sscc):
        raise IdentifierError("sscc", f"{text!r} is not an SSCC: give (00) and 18 digits, or the 18 digits")
    return identifier


def _parse_giai(text: str) -> Giai:
    if text.startswith(("(8004)", "]d2", "8004")):
        identifier = parse_identifier(text)
        if isinstance(identifier, Giai):
            return identifier
    return Giai(value=text)


def _parse_expiry(text: str) -> datetime:
    """ISO 8601 date-time; a bare date means the end of that day."""
    try:
        if len(text) == 10:
            return datetime.combine(datetime.fromisoformat(text).date(), time(23, 59))
        return datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expiry must be ISO 8601, e.g. 2026-03-14T23:59Z: {error}"
        ) from error


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"date of birth must be YYYY-MM-DD: {error}") from error


def _product_code(text: str) -> str:
    try:
        return parse_product_code(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=FORMATS, help="output format (default: from --out's extension, else png)"
    )
    parser.add_argument(
        "--dpi",
        type=int,
        choices=SUPPORTED_DPI,
        help=f"printer resolution (default {ZPL_DEFAULT_DPI} for zpl, {IMAGE_DEFAULT_DPI} otherwise)",
    )
    parser.add_argument(
        "--stock",
        choices=sorted([*STOCKS, *KIND_STOCKS]),
        help="label stock (default: the kind's usual stock; 4 x 4 in for a trial's bag)",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", metavar="FILE", help="write to FILE ('-' for standard output)")
    target.add_argument(
        "--print", dest="printer", metavar="HOST[:PORT]", help="send to a raw printer port (9100)"
    )
    target.add_argument("--cups", metavar="QUEUE", help="send to a CUPS queue with lp")


def _add_trial_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "clinical trial",
        "an investigational product's label carries FOR CLINICAL TRIAL USE ONLY and the trial's "
        "identifiers: give all five options or none",
    )
    group.add_argument(
        "--trial", dest="trial_register", metavar="REGISTER", help="EU CT, EudraCT or NCT number"
    )
    for dest, option, text in TRIAL_OPTIONS:
        group.add_argument(option, dest=dest, help=text)


def _trial(args: argparse.Namespace) -> TrialStatement | None:
    """The statement the trial options name (None: not a trial's label); ValueError when only some."""
    given = {"--trial": args.trial_register} | {o: getattr(args, d) for d, o, _h in TRIAL_OPTIONS}
    missing = [option for option, value in given.items() if value is None]
    if len(missing) == len(given):
        return None
    if missing:
        raise ValueError(f"a clinical trial's label names all of its trial: missing {', '.join(missing)}")
    register, protocol, site_number, subject, sponsor = given.values()
    return TrialStatement(
        register=register, protocol=protocol, site_number=site_number, subject=subject, sponsor=sponsor
    )


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``bag``, ``shipment``, ``wristband``, ``sample`` and ``asset`` subcommands to ``parser``."""
    kinds = parser.add_subparsers(dest="label_kind", metavar="KIND", required=True)

    bag = kinds.add_parser(
        "bag", help="bag label: COI, unit, DIN, product code, product, lot, volume, expiry, storage"
    )
    bag.add_argument("--coi", type=_identifier_type(parse_coi), help="COI (barcode, value or eye-readable)")
    bag.add_argument(
        "--unit", required=True, type=_identifier_type(_parse_unit), help="unit id, or KIND-NN with --coi"
    )
    bag.add_argument("--din", type=_identifier_type(parse_din), help="ISBT 128 DIN (barcode or eye-readable)")
    bag.add_argument("--product", required=True, help="product description")
    bag.add_argument("--expiry", required=True, type=_parse_expiry, help="expiry, ISO 8601")
    bag.add_argument("--storage-temp", default=DEFAULT_STORAGE_TEMP, help="storage temperature text")
    bag.add_argument(
        "--product-code",
        type=_product_code,
        help="ISBT 128 product code, e.g. S1395V00 (printed as Code 128 =<S1395V00)",
    )
    bag.add_argument("--lot", help="lot or batch number")
    bag.add_argument("--volume", help="volume as printed, e.g. '68 mL'")
    bag.add_argument(
        "--not-autologous",
        dest="autologous",
        action="store_false",
        help="leave out the FOR AUTOLOGOUS USE ONLY statement (not an autologous product)",
    )
    _add_trial_options(bag)
    _add_output_options(bag)

    shipment = kinds.add_parser("shipment", help="4 x 6 in shipper label")
    shipment.add_argument(
        "--shipment", required=True, type=_identifier_type(ShipmentId.parse), help="SHP-YYYY-NNNNNN"
    )
    shipment.add_argument("--from", dest="from_site", required=True, help="sending site")
    shipment.add_argument("--to", dest="to_site", required=True, help="receiving site")
    shipment.add_argument("--profile", required=True, choices=[p.value for p in TemperatureProfile])
    shipment.add_argument("--temperature", help="temperature range text overriding the profile's")
    shipment.add_argument("--sscc", type=_identifier_type(_parse_sscc), help="SSCC of the shipper")
    shipment.add_argument("--logger", type=_identifier_type(LoggerId.parse), help="logger id packed inside")
    shipment.add_argument(
        "--mark", action="append", default=[], choices=[m.value for m in HandlingMark], help="handling mark"
    )
    _add_output_options(shipment)

    wristband = kinds.add_parser("wristband", help="patient wristband carrying the COI")
    wristband.add_argument("--coi", required=True, type=_identifier_type(parse_coi))
    wristband.add_argument("--patient-name", help="patient name, where the site's policy prints it")
    wristband.add_argument("--dob", type=_parse_date, help="date of birth, YYYY-MM-DD")
    wristband.add_argument("--hospital-number", help="hospital (medical record) number")
    wristband.add_argument(
        "--require",
        action="append",
        default=[],
        choices=[field.value for field in PatientField],
        help="the site's policy: a patient field the wristband must carry (repeat for each)",
    )
    _add_trial_options(wristband)
    _add_output_options(wristband)

    sample = kinds.add_parser(
        "sample", help="2 x 1 in biobank sample tube label: QR code, unit id, COI, description, trial"
    )
    sample.add_argument(
        "--coi", type=_identifier_type(parse_coi), help="COI (barcode, value or eye-readable)"
    )
    sample.add_argument(
        "--unit", required=True, type=_identifier_type(_parse_unit), help="unit id, or SMP-NN with --coi"
    )
    sample.add_argument("--description", required=True, help="what the sample is (printed small)")
    sample.add_argument(
        "--trial", dest="trial_register", metavar="REGISTER", help="a trial case's register number"
    )
    _add_output_options(sample)

    asset = kinds.add_parser("asset", help="asset tag for a reusable shipper (GIAI) or a logger")
    which = asset.add_mutually_exclusive_group(required=True)
    which.add_argument("--giai", type=_identifier_type(_parse_giai), help="GIAI, with or without (8004)")
    which.add_argument("--logger", type=_identifier_type(LoggerId.parse), help="logger id LGR-...")
    asset.add_argument("--description", default="", help="what the asset is")
    _add_output_options(asset)


def _unit(args: argparse.Namespace) -> tuple[Coi, UnitId]:
    coi: Coi | None = args.coi
    unit: UnitId | str = args.unit
    if isinstance(unit, str):
        if coi is None:
            raise ValueError("--unit KIND-NN needs --coi (or give the full unit id)")
        unit = UnitId.parse(f"{coi.value}-{unit}")
    return coi or unit.coi, unit


def _bag_label(args: argparse.Namespace) -> BagLabel:
    coi, unit = _unit(args)
    din: Din | None = args.din
    return BagLabel(
        coi=coi,
        unit=unit,
        product=args.product,
        expiry=args.expiry,
        storage_temp=args.storage_temp,
        din=din,
        product_code=args.product_code,
        lot=args.lot,
        volume=args.volume,
        autologous=args.autologous,
        trial=_trial(args),
    )


def build_label(args: argparse.Namespace) -> Label:
    """The label described by parsed arguments; ``ValueError`` says what is inconsistent."""
    match args.label_kind:
        case "bag":
            return _bag_label(args)
        case "shipment":
            return ShipmentLabel(
                shipment=args.shipment,
                from_site=args.from_site,
                to_site=args.to_site,
                temperature_profile=TemperatureProfile(args.profile),
                temperature_text=args.temperature,
                sscc=args.sscc,
                logger=args.logger,
                handling=tuple(HandlingMark(mark) for mark in args.mark),
            )
        case "wristband":
            return WristbandLabel(
                coi=args.coi,
                patient_name=args.patient_name,
                date_of_birth=args.dob,
                hospital_number=args.hospital_number,
                trial=_trial(args),
            )
        case "sample":
            coi, unit = _unit(args)
            return SampleLabel(
                coi=coi, unit=unit, description=args.description, trial_register=args.trial_register
            )
        case "asset":
            return AssetTag(asset=args.giai or args.logger, description=args.description)
    raise ValueError(f"unknown label kind {args.label_kind!r}")


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(args.out).suffix.lower().lstrip(".") if args.out else ""
    return suffix if suffix in FORMATS else "png"


def run(args: argparse.Namespace) -> int:
    """Render and deliver the label; 0 on success, 2 for bad input, 1 if the printer failed."""
    from labels.api import render_label  # Pillow and reportlab load only when a label is made
    from labels.investigational import SAMPLE_2X1, TRIAL_BAG_4X4, stock_for
    from labels.printers import PrinterError, send_cups, send_raw, write_file
    from labels.templates import DEFAULT_STOCK

    fmt = output_format(args)
    dpi = args.dpi or (ZPL_DEFAULT_DPI if fmt == "zpl" else IMAGE_DEFAULT_DPI)
    try:
        if args.printer and fmt == "png":
            raise ValueError("a printer's raw port takes ZPL (or PDF where the printer reads it), not PNG")
        label = build_label(args)
        kind_stocks = {SAMPLE_2X1.name: SAMPLE_2X1, TRIAL_BAG_4X4.name: TRIAL_BAG_4X4}
        if args.stock:
            stock = kind_stocks.get(args.stock) or get_stock(args.stock)
        else:
            stock = stock_for(label) or DEFAULT_STOCK[type(label)]
        requires = [PatientField(field) for field in getattr(args, "require", [])]
        data = render_label(label, fmt, dpi, stock, wristband_requires=requires)
    except ValueError as error:
        print(f"celltrail label: error: {error}", file=sys.stderr)
        return 2
    try:
        if args.out:
            write_file(args.out, data)
        elif args.printer:
            send_raw(args.printer, data)
        else:
            send_cups(args.cups, data, fmt, stock)
    except (PrinterError, OSError) as error:
        print(f"celltrail label: error: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="celltrail label", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
