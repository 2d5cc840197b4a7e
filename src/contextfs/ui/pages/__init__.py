"""Every page of the UI: (path, handler, methods), gathered from one module per page."""

from __future__ import annotations

from ..app import Page
from . import (
    branches,
    commit,
    context,
    health,
    history,
    memories,
    memory,
    proof,
    receipts,
    sessions,
)

PAGES: list[tuple[str, Page, list[str]]] = [
    *history.ROUTES,
    *commit.ROUTES,
    *proof.ROUTES,
    *memories.ROUTES,
    *memory.ROUTES,
    *context.ROUTES,
    *receipts.ROUTES,
    *health.ROUTES,
    *sessions.ROUTES,
    *branches.ROUTES,
]
