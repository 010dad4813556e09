"""``GET /reports``: the files under ``$CHURN_HOME/reports`` over http, read-only.

The Dagster UI is an http page, so a ``file://`` link in it opens nothing: every materialization
links its report here instead (``CHURN_REPORTS_URL``). Only files of the kinds the pipeline writes
are served, and only from inside the folder: a path with ``..``, an absolute path, a hidden file
or a symbolic link that leads outside is answered 404 like a file that does not exist.
"""

from __future__ import annotations

import html
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from churn_assets.settings import churn_paths

PREFIX = "/reports"
# What the reports stage writes, and the type each is sent as.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
}
NOT_FOUND = "no such report"


def reports_router(folder: Path | None = None) -> APIRouter:
    """The reports route over ``folder`` (default: ``$CHURN_HOME/reports``)."""
    root = (folder if folder is not None else churn_paths().reports).resolve()
    router = APIRouter(prefix=PREFIX, tags=["reports"])

    @router.get("", response_class=HTMLResponse, include_in_schema=False)
    @router.get("/", response_class=HTMLResponse)
    def report_index() -> HTMLResponse:
        """Every report, newest folder first: drift reports, at-risk lists, health pages, cards."""
        return HTMLResponse(index_page(root, listed(root)))

    @router.get("/{path:path}", responses={404: {"description": NOT_FOUND}})
    def report_file(path: str) -> FileResponse:
        """One report file, by its path under the reports folder."""
        found = resolve(root, path)
        if found is None:
            raise HTTPException(404, NOT_FOUND)
        return FileResponse(
            found,
            media_type=MEDIA_TYPES[found.suffix.lower()],
            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )

    return router


def resolve(root: Path, path: str) -> Path | None:
    """The file ``path`` names inside ``root``, or None when it is outside, hidden, of a kind not
    served, or absent. ``root`` is already resolved."""
    if "\\" in path or "\x00" in path:
        return None
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or any(p in ("..", ".") or p[0] == "." for p in parts):
        return None
    if PurePosixPath(path).suffix.lower() not in MEDIA_TYPES:
        return None
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def listed(root: Path) -> list[PurePosixPath]:
    """The servable files under ``root``, as paths relative to it."""
    if not root.is_dir():
        return []
    files = [
        PurePosixPath(p.relative_to(root).as_posix())
        for p in root.rglob("*")
        if p.suffix.lower() in MEDIA_TYPES and p.is_file()
    ]
    return [f for f in files if resolve(root, str(f)) is not None]


def index_page(root: Path, files: list[PurePosixPath]) -> str:
    """An HTML list of ``files`` by folder; pictures are left to the pages that show them."""
    by_folder: dict[str, list[PurePosixPath]] = {}
    for file in files:
        if file.suffix.lower() != ".png":
            by_folder.setdefault(str(file.parent), []).append(file)
    sections = []
    for folder in sorted(by_folder, reverse=True):
        items = "".join(
            f'<li><a href="{PREFIX}/{quote(str(f))}">{html.escape(f.name)}</a></li>'
            for f in sorted(by_folder[folder], reverse=True)
        )
        title = "reports" if folder == "." else folder
        sections.append(f"<h2>{html.escape(title)}</h2><ul>{items}</ul>")
    body = "".join(sections) or f"<p>No reports yet under {html.escape(str(root))}.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>churn_assets reports</title>"
        "<style>body{font-family:sans-serif;margin:2em}h2{font-size:1.1em}</style></head>"
        f"<body><h1>churn_assets reports</h1>{body}</body></html>"
    )
