"""Markdown memory files (CLAUDE.md, AGENTS.md, GEMINI.md, .cursorrules, Cursor .mdc rules).

Reading: one memory per bullet (with its continuation lines) or per paragraph;
a fenced code block belongs to the bullet or paragraph right above it, else it
is a memory of its own; the nearest heading above a memory is its tag.
Front matter (``---`` ... ``---``, as Cursor's ``.mdc`` rules open with),
HTML comments and thematic breaks are not memories. Writing is the inverse for
what it writes: bullets under ``##`` headings named by their tag, so a written
file reads back as the same memories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .records import ImportedMemory, ImportFileError

#: The type of a memory read from a rules file: it tells the agent what to do.
MARKDOWN_TYPE = "Instruction"

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*))?$")
_BULLET = re.compile(r"^([ \t]*)([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*))?$")
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")
_BREAK = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_COMMENT_OPEN = re.compile(r"^ {0,3}<!--")


def _fence_opening(line: str) -> tuple[int, str] | None:
    """The indent and marker of a line that opens a code block, else None.

    A backtick fence's info string holds no backtick: ```` ```npm test``` ```` is inline code.
    """
    match = _FENCE.match(line)
    if match is None or (match.group(2)[0] == "`" and "`" in match.group(3)):
        return None
    return len(match.group(1)), match.group(2)


def _fence_closes(line: str, marker: str) -> bool:
    """True when ``line`` closes a code block that ``marker`` opened."""
    match = _FENCE.match(line)
    return (
        match is not None
        and match.group(2)[0] == marker[0]
        and len(match.group(2)) >= len(marker)
        and not match.group(3).strip()
    )


def heading_tag(text: str) -> str | None:
    """A heading's text without its closing ``#`` sequence, spacing made single."""
    text = text.rstrip(" \t")
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        text = bare
    return " ".join(text.split()) or None


@dataclass(slots=True)
class _Block:
    """A bullet or paragraph being read."""

    kind: str  # "bullet" or "paragraph"
    line: int
    indent: int  # a bullet's content column; continuation lines lose up to this much
    lines: list[str] = field(default_factory=list)
    after_blank: bool = False


@dataclass(slots=True)
class _Fence:
    """A fenced code block being read."""

    line: int
    marker: str
    indent: int  # the spaces its lines lose: its own indent, or its bullet's content column
    lines: list[str]
    owner: _Block | None


class _Reader:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.memories: list[ImportedMemory] = []
        self.tag: str | None = None
        self.block: _Block | None = None
        self.fence: _Fence | None = None
        self.comment_line: int | None = None

    def error(self, line: int, problem: str) -> ImportFileError:
        return ImportFileError(self.filename, line, problem)

    def flush(self) -> None:
        block, self.block = self.block, None
        if block is None:
            return
        text = "\n".join(block.lines).strip()
        if text:
            tags = (self.tag,) if self.tag else ()
            self.memories.append(
                ImportedMemory(content=text, type=MARKDOWN_TYPE, line=block.line, tags=tags)
            )

    def feed(self, number: int, line: str) -> None:
        if self.fence is not None:
            self.in_fence(line)
            return
        if self.comment_line is not None:
            if "-->" in line:
                self.comment_line = None
                self.after_comment(number, line.split("-->", 1)[1])
            return
        if not line.strip():
            if self.block is not None and self.block.kind == "bullet":
                self.block.after_blank = True
            else:
                self.flush()
            return
        block = self.block
        if block is not None and block.kind == "bullet" and _indent(line) >= block.indent:
            self.bullet_line(number, line)  # nested lists, code and paragraphs stay in it
            return
        if _COMMENT_OPEN.match(line):
            self.flush()
            rest = line.split("<!--", 1)[1]
            if "-->" in rest:
                self.after_comment(number, rest.split("-->", 1)[1])
            else:
                self.comment_line = number
            return
        if fence := _fence_opening(line):
            self.open_fence(number, line, *fence)
            return
        if heading := _HEADING.match(line):
            self.flush()
            self.tag = heading_tag(heading.group(2) or "")
            return
        if block is not None and block.kind == "paragraph" and _UNDERLINE.match(line):
            self.block = None  # a setext heading: the paragraph was its text
            self.tag = heading_tag(" ".join(block.lines))
            return
        if _BREAK.match(line):
            self.flush()
            return
        if bullet := _BULLET.match(line):
            self.flush()
            indent = len(bullet.group(1)) + len(bullet.group(2)) + len(bullet.group(3) or " ")
            text = bullet.group(4) or ""
            self.block = _Block("bullet", number, indent, [])
            if fence := _fence_opening(text):  # a bullet that opens with a code block
                self.fence = _Fence(number, fence[1], indent, [text.rstrip()], self.block)
            else:
                self.block.lines.append(text)
            return
        self.text_line(number, line)

    def after_comment(self, number: int, rest: str) -> None:
        """What follows a comment on its last line is read as a line of its own."""
        if rest.strip():
            self.feed(number, rest.lstrip(" \t"))

    def bullet_line(self, number: int, line: str) -> None:
        """A line indented to the bullet's content: part of it, code blocks included."""
        block = self.block
        assert block is not None
        content = _dedent(line, block.indent)
        if fence := _fence_opening(content):
            self.fence = _Fence(number, fence[1], block.indent, [content], block)
            return
        if block.after_blank:
            block.lines.append("")
            block.after_blank = False
        block.lines.append(content)

    def text_line(self, number: int, line: str) -> None:
        """A line that opens nothing: it continues the block above, or starts a paragraph."""
        block = self.block
        if block is not None and block.after_blank:
            self.flush()
            block = None
        if block is None:
            self.block = _Block("paragraph", number, 0, [line.rstrip()])
        elif block.kind == "bullet":
            block.lines.append(line.strip())  # a lazy continuation line
        else:
            block.lines.append(line.rstrip())

    def open_fence(self, number: int, line: str, indent: int, marker: str) -> None:
        """A code block joins the paragraph or bullet right above it, else stands alone."""
        owner = self.block
        if owner is not None and owner.after_blank:
            self.flush()
            owner = None
        self.fence = _Fence(number, marker, indent, [_dedent(line, indent)], owner)

    def in_fence(self, line: str) -> None:
        fence = self.fence
        assert fence is not None
        content = _dedent(line, fence.indent)
        fence.lines.append(content)
        if not _fence_closes(content, fence.marker):
            return
        self.fence = None
        if fence.owner is not None:
            if fence.owner.after_blank:
                fence.owner.lines.append("")
                fence.owner.after_blank = False
            fence.owner.lines.extend(fence.lines)
            self.block = fence.owner
        else:
            self.block = _Block("paragraph", fence.line, 0, fence.lines)
            self.flush()

    def finish(self) -> list[ImportedMemory]:
        if self.fence is not None:
            raise self.error(self.fence.line, "this code block is never closed")
        if self.comment_line is not None:
            raise self.error(self.comment_line, "this HTML comment is never closed")
        self.flush()
        return self.memories


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dedent(line: str, indent: int) -> str:
    """``line`` without up to ``indent`` leading spaces, and without trailing space."""
    return line[min(_indent(line), indent) :].rstrip()


def _front_matter_end(lines: Sequence[str], filename: str) -> int:
    """The number of lines the front matter takes (0 when there is none)."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            return index + 1
    raise ImportFileError(filename, 1, "the front matter opened here is never closed")


def parse_markdown(text: str, filename: str) -> list[ImportedMemory]:
    """Read the memories of a Markdown memory file, in file order."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    reader = _Reader(filename)
    skip = _front_matter_end(lines, filename)
    for number, line in enumerate(lines[skip:], skip + 1):
        reader.feed(number, line.expandtabs(4))
    return reader.finish()


@dataclass(frozen=True, slots=True)
class MarkdownItem:
    """A memory to write: its text and the heading it goes under (None: above every heading)."""

    content: str
    heading: str | None


def render_markdown(items: Iterable[MarkdownItem], *, header: str) -> str:
    """Bullets grouped under ``##`` headings, in the order each heading is first met.

    ``header`` goes first as an HTML comment, which reading skips. Items with no
    heading come first, above every heading.
    """
    sections: dict[str | None, list[str]] = {None: []}
    for item in items:
        sections.setdefault(item.heading, []).append(bullet_text(item.content))
    parts = [comment_text(header)]
    if sections[None]:
        parts.append("\n" + "".join(sections[None]))
    for heading, bullets in sections.items():
        if heading is not None:
            parts.append(heading_text(heading) + "".join(bullets))
    return "".join(parts)


def comment_text(text: str) -> str:
    """An HTML comment line that nothing in ``text`` can close early."""
    return f"<!-- {' '.join(text.replace('--', '- -').split())} -->\n"


def heading_text(heading: str) -> str:
    """A ``##`` heading with the blank lines around it (closed by `` #`` if it ends in ``#``)."""
    text = " ".join(heading.split())
    if heading_tag(text) != text:
        text += " #"
    return f"\n## {text}\n\n"


def bullet_text(content: str) -> str:
    """One bullet: the first line after ``- ``, every further line indented two spaces."""
    first, *rest = content.strip().split("\n")
    lines = [f"- {first.rstrip()}"] + [
        f"  {line.rstrip()}" if line.strip() else "" for line in rest
    ]
    return "\n".join(lines) + "\n"


def writable_content(content: str) -> str | None:
    """``content`` as a bullet can carry it so it reads back as one memory, else None.

    A line that would read as a code fence or a thematic break gets a backslash
    in front; a text that still does not read back (spacing aside) is None.
    """
    if _reads_back(content):
        return content
    lines = content.strip().split("\n")
    escaped = [
        f"\\{line}" if _fence_opening(line.lstrip()) or _BREAK.match(line.lstrip()) else line
        for line in lines
    ]
    if _BREAK.match("- " + escaped[0]) or _BREAK.match(escaped[0]):
        escaped[0] = "\\" + escaped[0]
    candidate = "\n".join(escaped)
    return candidate if _reads_back(candidate) else None


def _reads_back(content: str) -> bool:
    try:
        read = parse_markdown(bullet_text(content), "")
    except ImportFileError:
        return False
    return len(read) == 1 and read[0].content.split() == content.split()
