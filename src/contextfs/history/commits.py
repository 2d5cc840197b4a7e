"""Commits: parents, the snapshot root, who, when, why.

A commit's id covers its whole canonical encoding: the snapshot tree root (and
through it every entry), every parent, the author, message, UTC time,
generation number and free metadata. The change a commit makes (the seed's
``CompressedContext``) is the difference between its first parent's snapshot
and its own, computed from the trees at a cost proportional to the change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptObjectError, InvalidInputError
from ..model import canonical
from ..model.canonical import Metadata, check_text
from ..model.ids import ObjectId, object_digest, to_hex

COMMIT = "commit"
MAX_MESSAGE_LENGTH = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """One version of the memory."""

    tree: bytes
    parents: tuple[bytes, ...]
    generation: int
    author: str
    message: str
    timestamp: int
    metadata: Metadata = field(default_factory=dict)

    def encode(self) -> bytes:
        """Return the commit's canonical bytes."""
        return canonical.encode(
            [
                self.tree,
                list(self.parents),
                self.generation,
                self.author,
                self.message,
                self.timestamp,
                self.metadata,
            ]
        )

    @property
    def digest(self) -> bytes:
        """The raw 32-byte commit id."""
        return object_digest(COMMIT, self.encode())

    @property
    def id(self) -> ObjectId:
        """The commit's full id."""
        return to_hex(self.digest)

    @property
    def summary(self) -> str:
        """The first line of the message."""
        return self.message.split("\n", 1)[0]


def check_message(message: object) -> str:
    """Return a commit message if acceptable, else raise InvalidInputError."""
    if not isinstance(message, str):
        raise InvalidInputError(f"commit message must be text, got {type(message).__name__}")
    if not message.strip():
        raise InvalidInputError("commit message must not be empty")
    if len(message) > MAX_MESSAGE_LENGTH:
        raise InvalidInputError(f"commit message is longer than {MAX_MESSAGE_LENGTH} characters")
    return check_text(message, "commit message")


def check_author(author: object) -> str:
    """Return an author name if it is non-empty single-line text, else raise."""
    if not isinstance(author, str) or not author.strip() or "\n" in author or "\x00" in author:
        raise InvalidInputError(f"author must be non-empty single-line text, got {author!r}")
    return check_text(author, "author")


def decode_commit(data: bytes) -> Commit:
    """Decode a stored commit, checking every field's type."""
    value: Any = canonical.decode(data, kind=COMMIT)
    try:
        tree, parents, generation, author, message, timestamp, metadata = value
    except (TypeError, ValueError):
        raise CorruptObjectError("commit does not have seven fields") from None
    if not (
        isinstance(tree, bytes)
        and len(tree) == 32
        and isinstance(parents, list)
        and all(isinstance(p, bytes) and len(p) == 32 for p in parents)
        and isinstance(generation, int)
        and isinstance(author, str)
        and isinstance(message, str)
        and isinstance(timestamp, int)
        and isinstance(metadata, dict)
    ):
        raise CorruptObjectError("commit has a field of the wrong type")
    return Commit(
        tree=tree,
        parents=tuple(parents),
        generation=generation,
        author=author,
        message=message,
        timestamp=timestamp,
        metadata=metadata,
    )
