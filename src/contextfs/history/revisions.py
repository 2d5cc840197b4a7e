"""Revision expressions: ``main``, ``v1.0``, ``HEAD~3``, ``abc123^2``, ``main~2^``.

Parsing is pure; resolution happens in the repository, which knows refs and
commits. Suffixes follow git: ``~n`` follows first parents n times (``~`` is
``~1``), ``^n`` takes the n-th parent (``^`` is ``^1``, ``^0`` the commit itself).
"""

from __future__ import annotations

import re

from ..errors import UnknownRevisionError

MAX_STEPS = 1_000_000
_SUFFIX = re.compile(r"([~^])([0-9]*)")


def parse_revision(text: str) -> tuple[str, list[tuple[str, int]]]:
    """Split a revision into its base name and its ``~``/``^`` steps.

    Raises:
        UnknownRevisionError: the expression is empty or its suffix is malformed.
    """
    if not isinstance(text, str) or not text.strip():
        raise UnknownRevisionError("empty revision")
    cut = len(text)
    for i, char in enumerate(text):
        if char in "~^":
            cut = i
            break
    base, rest = text[:cut], text[cut:]
    if not base:
        raise UnknownRevisionError(f"revision {text!r} has no name before its suffix")
    steps: list[tuple[str, int]] = []
    position = 0
    while position < len(rest):
        match = _SUFFIX.match(rest, position)
        if match is None or match.end() == position:
            raise UnknownRevisionError(f"revision {text!r} has a malformed suffix")
        number = int(match.group(2)) if match.group(2) else 1
        if number > MAX_STEPS:
            raise UnknownRevisionError(f"revision {text!r} steps too far")
        steps.append((match.group(1), number))
        position = match.end()
    return base, steps
