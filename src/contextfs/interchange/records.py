"""What every importer produces, and the one error every importer raises."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInputError


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedMemory:
    """One memory read from a foreign format, before it becomes an atom.

    ``anchor`` names the memory inside its source when the format has ids of
    its own (a mem0 id, a LangGraph namespace and key); the atom's source is
    the source's name plus ``#anchor``. ``line`` says where in a file it was
    read (None for a store's items), for error messages.
    """

    content: str
    type: str
    line: int | None
    tags: tuple[str, ...] = ()
    timestamp: int | None = None  # microseconds since the epoch; None: the source's own time
    anchor: str = ""
    relevance: float = 1.0


class ImportFileError(InvalidInputError):
    """A source file cannot be imported; names the file and the line where it went wrong."""

    def __init__(self, filename: str, line: int | None, problem: str) -> None:
        where = f"{filename}:{line}" if line is not None else filename
        super().__init__(f"{where}: {problem}; nothing was imported")
        self.filename = filename
        self.line = line
        self.problem = problem


def line_of(data: bytes | str, offset: int) -> int:
    """The 1-based line number of ``offset`` in ``data``."""
    if isinstance(data, bytes):
        return data.count(b"\n", 0, offset) + 1
    return data.count("\n", 0, offset) + 1


def decode_text(data: bytes, filename: str) -> str:
    """UTF-8 text without a byte-order mark, or an error naming the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFileError(filename, line_of(data, exc.start), "not UTF-8 text") from None
    return text.removeprefix("\ufeff")
