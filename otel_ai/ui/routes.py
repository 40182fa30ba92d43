"""Serves the web UI: ``/`` is the page, ``/ui/<path>`` its assets, all from this package.

The page is public (it holds no data); every API call it makes carries the bearer token the
person typed, when ``api.token`` is set. Assets are resolved inside :data:`STATIC_DIR` only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from otel_ai.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
# The page is small and changes with the package: revalidate every load instead of caching stale code.
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
        " frame-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'self'"
    ),
}

router = APIRouter(include_in_schema=False)


def asset(path: str) -> Path:
    """The file under :data:`STATIC_DIR` named by ``path``, or :class:`NotFound`."""
    target = (STATIC_DIR / path).resolve()
    if STATIC_DIR not in target.parents or not target.is_file() or target.suffix not in _TYPES:
        raise NotFound(f"no UI asset {path!r}")
    return target


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type=_TYPES[".html"], headers=_HEADERS)


@router.get("/ui")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/", status_code=307)


@router.get("/ui/{path:path}")
def ui_asset(path: str) -> FileResponse:
    target = asset(path)
    return FileResponse(target, media_type=_TYPES[target.suffix], headers=_HEADERS)
