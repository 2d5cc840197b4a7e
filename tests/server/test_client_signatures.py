"""The blocking Client spells out AsyncClient's parameters, so mypy checks its callers."""

from __future__ import annotations

import inspect

import pytest

from contextfs.client import AsyncClient, Client

SHARED = sorted(
    name
    for name, _ in inspect.getmembers(Client, inspect.isfunction)
    if not name.startswith("_") and hasattr(AsyncClient, name)
)


def test_the_clients_share_their_requests() -> None:
    assert "expand" in SHARED
    assert "session" in SHARED
    assert len(SHARED) >= 16


@pytest.mark.parametrize("name", SHARED)
def test_each_method_takes_what_the_async_one_takes(name: str) -> None:
    blocking = inspect.signature(getattr(Client, name)).parameters
    asynchronous = inspect.signature(getattr(AsyncClient, name)).parameters
    assert all(p.kind is not p.VAR_KEYWORD for p in blocking.values())
    assert [(p.name, p.kind, p.default, p.annotation) for p in blocking.values()] == [
        (p.name, p.kind, p.default, p.annotation) for p in asynchronous.values()
    ]
