"""A turn's context as provider requests: Anthropic with cache breakpoints, OpenAI messages.

Plain dicts, shaped as each provider's API documents them, so no SDK is
needed (pass them as keyword arguments to the SDK's create call, or post them
as JSON). The layout is the one :mod:`contextfs.session.turns` is built for:

1. the system prompt: the caller's fixed instructions, then the stable block;
   a cache breakpoint after it (Anthropic), or simply a stable prefix (OpenAI,
   which caches prefixes of 1,024 tokens or more by itself);
2. the conversation so far, unchanged, with a second breakpoint on its last
   message, so each turn also reads the conversation from the cache;
3. the new user message: the volatile block, then the user's text. Only this
   part changes from turn to turn, and it comes last, so it never invalidates
   anything cached before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from ..errors import InvalidInputError
from .turns import TurnBlock

#: Anthropic's marker for a cache breakpoint (5-minute lifetime).
EPHEMERAL: Final = {"type": "ephemeral"}

Message = Mapping[str, Any]


class TurnContext(Protocol):
    """What the helpers read of a :class:`contextfs.TurnContext`: its blocks, in order."""

    @property
    def blocks(self) -> Sequence[TurnBlock]:
        """The stable block, then the volatile one."""
        ...


def _blocks(turn: TurnContext) -> tuple[str, str]:
    """The stable and volatile texts of ``turn``."""
    stable = "".join(b.text for b in turn.blocks if b.cacheable)
    volatile = "".join(b.text for b in turn.blocks if not b.cacheable)
    return stable, volatile


def _check(conversation: Sequence[Message], user: str) -> None:
    if not isinstance(user, str) or not user:
        raise InvalidInputError("the user's message must be non-empty text")
    for message in conversation:
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
            raise InvalidInputError(
                f"conversation messages need a role of 'user' or 'assistant', got {message!r}"
            )
        content = message.get("content")
        if not (isinstance(content, str) or (isinstance(content, list) and content)):
            raise InvalidInputError(
                f"conversation messages need text or a non-empty list as content, got {message!r}"
            )


def _joined(*parts: str) -> str:
    return "\n".join(part.rstrip("\n") for part in parts if part)


def anthropic_request(
    turn: TurnContext,
    user: str,
    *,
    system: str = "",
    conversation: Sequence[Message] = (),
) -> dict[str, Any]:
    """``system`` and ``messages`` for Anthropic's Messages API, with cache breakpoints.

    The system prompt is ``system`` then the stable block, one text block
    marked ``cache_control``; the conversation's last message gets a second
    breakpoint; the new user message holds the volatile block, then ``user``.
    Add ``model`` and ``max_tokens`` and send it.

    Raises:
        InvalidInputError: ``user`` is empty or a message has no valid role.
    """
    _check(conversation, user)
    stable, volatile = _blocks(turn)
    prefix = _joined(system, stable)
    messages: list[dict[str, Any]] = [dict(message) for message in conversation]
    if messages:
        last = messages[-1]
        content = last["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        content = [dict(part) for part in content]
        content[-1]["cache_control"] = dict(EPHEMERAL)
        last["content"] = content
    parts = [{"type": "text", "text": text} for text in (volatile.rstrip("\n"), user) if text]
    messages.append({"role": "user", "content": parts})
    request: dict[str, Any] = {"messages": messages}
    if prefix:
        request["system"] = [{"type": "text", "text": prefix, "cache_control": dict(EPHEMERAL)}]
    return request


def openai_messages(
    turn: TurnContext,
    user: str,
    *,
    system: str = "",
    conversation: Sequence[Message] = (),
) -> list[dict[str, Any]]:
    """``messages`` for OpenAI's Chat Completions API, stable parts first.

    OpenAI caches the longest prefix it has seen (1,024 tokens or more) by
    itself; the system message, ``system`` then the stable block, and the
    conversation form that prefix. The new user message holds the volatile
    block, then ``user``.

    Raises:
        InvalidInputError: ``user`` is empty or a message has no valid role.
    """
    _check(conversation, user)
    stable, volatile = _blocks(turn)
    prefix = _joined(system, stable)
    messages: list[dict[str, Any]] = [{"role": "system", "content": prefix}] if prefix else []
    messages.extend(dict(message) for message in conversation)
    messages.append({"role": "user", "content": _joined(volatile, user)})
    return messages


__all__ = ["anthropic_request", "openai_messages"]
