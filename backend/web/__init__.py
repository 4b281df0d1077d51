"""Server-rendered web pages: the coordinator's live board, shipment and case pages, the alerts inbox,
the receipt desk, the pharmacy's stock, the courier's phone page and bedside verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from litestar.datastructures import CacheControlHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from backend.domain.access import PUBLIC
from backend.web import filters, pages, session
from backend.web import planning as planning_pages

HERE: Final = Path(__file__).resolve().parent


def routes() -> tuple[Any, ...]:
    static = create_static_files_router(
        path="/static",
        directories=[HERE / "static"],
        opt=PUBLIC,
        include_in_schema=False,
        # The files change with each release; a short cache keeps phones fast without serving stale code.
        cache_control=CacheControlHeader(max_age=300),
    )
    return (
        session.login_page,
        session.login_submit,
        session.logout,
        pages.home,
        pages.board_page,
        pages.board_rows,
        pages.shipment_page,
        pages.case_page,
        pages.alerts_page,
        pages.receipt_list,
        pages.receipt_desk,
        pages.courier_page,
        pages.bedside_page,
        pages.pharmacy_page,
        pages.courier_worker,
        *planning_pages.PAGES,
        static,
    )


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=filters.install
    )
