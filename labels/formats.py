"""The label file formats and their media types: the one map the CLI, the HTTP API and the renderer
share. Light on purpose (no renderer is imported), so the server can name a format without loading one."""

from typing import Final, Literal, get_args

LabelFormat = Literal["png", "pdf", "zpl"]
FORMATS: Final[tuple[str, ...]] = get_args(LabelFormat)
# ZPL has no registered media type; Zebra's tools and browsers take the x- form.
MEDIA_TYPES: Final = {"png": "image/png", "pdf": "application/pdf", "zpl": "application/x-zpl"}
