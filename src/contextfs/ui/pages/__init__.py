"""Every page of the UI: (path, handler, methods), gathered from one module per page."""

from __future__ import annotations

from ..app import Page
from . import history

PAGES: list[tuple[str, Page, list[str]]] = [
    *history.ROUTES,
]
