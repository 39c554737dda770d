"""The companion UI: one page at / and /join, its assets under /static."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"


async def page(request: Request) -> Response:
    return FileResponse(
        STATIC / "index.html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


class _Assets(StaticFiles):
    """The page's modules import each other without cache-busting names: revalidate."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


routes = [
    Route("/", page),
    Route("/join", page),
    Mount("/static", app=_Assets(directory=STATIC, check_dir=False), name="static"),
]
