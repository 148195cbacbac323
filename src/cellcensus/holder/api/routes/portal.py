"""The web portal: one page, its script and its style sheet, served as they are packaged.

The portal holds no rules of its own: its script calls the JSON API (login, `/me`,
`/algorithms`, `/jobs`, results) with the token in the tab's session storage, never a cookie.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

router = APIRouter(include_in_schema=False)

PREFIX = "/portal/"
FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "portal.js": ("portal.js", "text/javascript; charset=utf-8"),
    "portal.css": ("portal.css", "text/css; charset=utf-8"),
}
"""The portal's addresses under `PREFIX`: the packaged file each serves, and its type."""
ADDRESSES = frozenset(PREFIX + address for address in FILES)
"""Every address the portal answers with a file (`/portal` itself only redirects)."""


@cache
def _content(name: str) -> bytes:
    return (resources.files("cellcensus.holder.api") / "portal" / name).read_bytes()


@router.get("/portal")
def portal_root() -> RedirectResponse:
    """The portal's page lives at `/portal/`, where its files' relative addresses resolve."""
    # Relative, so that a reverse proxy serving the service under a path keeps it.
    return RedirectResponse("portal/", status_code=308)


def _serve(address: str) -> Response:
    name, media_type = FILES[address]
    return Response(_content(name), media_type=media_type)


@router.get("/portal/")
def portal_page() -> Response:
    """The portal's page."""
    return _serve("")


@router.get("/portal/portal.js")
def portal_script() -> Response:
    """The portal's script (an ES module)."""
    return _serve("portal.js")


@router.get("/portal/portal.css")
def portal_style() -> Response:
    """The portal's style sheet."""
    return _serve("portal.css")
