"""Reading rules files as memories, and writing memories back as one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contextfs.interchange import ImportFileError, parse_markdown
from contextfs.interchange.markdown import MarkdownItem, render_markdown, writable_content

CLAUDE_MD = """\
# Project Atlas

Atlas is a Python 3.12 service.
It deploys on Kubernetes.

## Testing

- Run `pytest -q` before every commit.
- Tests must stay under 60 s:
  - unit tests live in tests/unit
  - slow ones are marked `@pytest.mark.slow`
* Use hypothesis for parsers

  with at least 200 examples.
1. Build with:
   ```sh
   make build
   ```

<!-- a note for people,
     over two lines -->
Style
-----
- Prefer `pathlib` over `os.path`.

---

Run the linters like this:
```sh
ruff check .
```

```text
a code block on its own
```
"""


def read(text: str) -> list[tuple[int | None, tuple[str, ...], str]]:
    return [(m.line, m.tags, m.content) for m in parse_markdown(text, "CLAUDE.md")]


def test_bullets_paragraphs_and_code_blocks_are_memories_under_their_heading() -> None:
    assert read(CLAUDE_MD) == [
        (3, ("Project Atlas",), "Atlas is a Python 3.12 service.\nIt deploys on Kubernetes."),
        (8, ("Testing",), "Run `pytest -q` before every commit."),
        (
            9,
            ("Testing",),
            "Tests must stay under 60 s:\n- unit tests live in tests/unit\n"
            "- slow ones are marked `@pytest.mark.slow`",
        ),
        (12, ("Testing",), "Use hypothesis for parsers\n\nwith at least 200 examples."),
        (15, ("Testing",), "Build with:\n```sh\nmake build\n```"),
        (24, ("Style",), "Prefer `pathlib` over `os.path`."),
        (28, ("Style",), "Run the linters like this:\n```sh\nruff check .\n```"),
        (33, ("Style",), "```text\na code block on its own\n```"),
    ]
    assert {m.type for m in parse_markdown(CLAUDE_MD, "CLAUDE.md")} == {"Instruction"}


def test_cursor_rule_front_matter_is_not_a_memory() -> None:
    mdc = '---\ndescription: Python rules\nglobs: "**/*.py"\nalwaysApply: true\n---\n- Use ruff.\n'
    assert read(mdc) == [(6, (), "Use ruff.")]


def test_windows_line_endings_read_the_same() -> None:
    assert read(CLAUDE_MD.replace("\n", "\r\n")) == read(CLAUDE_MD)


def test_memories_above_every_heading_have_no_tag() -> None:
    assert read("Keep answers short.\n\n# Later\n- tagged\n") == [
        (1, (), "Keep answers short."),
        (4, ("Later",), "tagged"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("---\ntitle: x\n- a rule\n", 1, "the front matter opened here is never closed"),
        ("- a rule\n\n```sh\nmake\n", 3, "this code block is never closed"),
        ("- a rule\n<!-- never\nclosed\n", 2, "this HTML comment is never closed"),
    ],
)
def test_a_malformed_file_names_the_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        parse_markdown(text, "rules.md")
    assert str(caught.value) == f"rules.md:{line}: {problem}; nothing was imported"


def test_render_groups_by_heading_in_order_of_the_best_memory() -> None:
    items = [
        MarkdownItem("Best, under B", "B"),
        MarkdownItem("No heading", None),
        MarkdownItem("Second, under A", "A"),
        MarkdownItem("Third, under B\nwith a second line", "B"),
    ]
    assert render_markdown(items, header="from main -- best first") == (
        "<!-- from main - - best first -->\n"
        "\n- No heading\n"
        "\n## B\n\n- Best, under B\n- Third, under B\n  with a second line\n"
        "\n## A\n\n- Second, under A\n"
    )


_WORD = st.text(alphabet="abcdefxyz0123456789`*_#>.:()[]-+|!", min_size=1, max_size=8)
_LINE = st.lists(_WORD, min_size=1, max_size=6).map(" ".join)
_INDENTED = st.tuples(st.sampled_from(["", "  ", "    "]), _LINE).map("".join)
_CONTENT = st.tuples(_LINE, st.lists(st.sampled_from([""]) | _INDENTED, max_size=4)).map(
    lambda parts: "\n".join([parts[0], *parts[1]])
)
_HEADING = st.none() | st.text(alphabet="abcdef XYZ-", min_size=1, max_size=12).filter(str.strip)


def _normalised(content: str) -> str:
    """What a Markdown file can carry of a text: no runs of blank lines, no outer space."""
    lines: list[str] = []
    for line in content.strip().split("\n"):
        if line.strip() or (lines and lines[-1]):
            lines.append(line.rstrip() if line.strip() else "")
    return "\n".join(lines).strip()


def _plain(line: str) -> bool:
    """Lines a writer cannot protect: code fences and thematic breaks read as Markdown."""
    stripped = line.strip()
    fence = stripped.startswith(("```", "~~~"))
    rule = len(set(stripped.replace(" ", ""))) == 1 and stripped[:1] in "-*_"
    return not fence and not (rule and len(stripped.replace(" ", "")) >= 3)


@given(st.lists(st.tuples(_CONTENT, _HEADING), min_size=1, max_size=6))
def test_what_render_writes_reads_back_as_the_same_memories(
    memories: list[tuple[str, str | None]],
) -> None:
    memories = [
        (c, h)
        for c, h in memories
        if all(_plain(line) for line in c.split("\n")) and _plain("- " + c.split("\n")[0])
    ]
    items = [MarkdownItem(content, heading) for content, heading in memories]
    read_back = parse_markdown(render_markdown(items, header="a header"), "out.md")
    expected_order = [i for i in items if i.heading is None]
    for heading in dict.fromkeys(i.heading for i in items if i.heading is not None):
        expected_order += [i for i in items if i.heading == heading]
    assert [(m.content, m.tags) for m in read_back] == [
        (_normalised(i.content), (" ".join(i.heading.split()),) if i.heading else ())
        for i in expected_order
    ]


def test_inline_code_in_triple_backticks_opens_no_block() -> None:
    text = "# Cmds\n```npm test``` runs the tests\n- rule a\n\n```sh\nls\n```\n- rule b\n"
    assert read(text) == [
        (2, ("Cmds",), "```npm test``` runs the tests"),
        (3, ("Cmds",), "rule a"),
        (5, ("Cmds",), "```sh\nls\n```"),
        (8, ("Cmds",), "rule b"),
    ]


def test_a_fence_indented_four_spaces_does_not_close_a_block() -> None:
    assert read("```\ncode\n    ```\nstill code\n```\n") == [
        (1, (), "```\ncode\n    ```\nstill code\n```")
    ]


def test_text_after_a_comment_on_its_line_is_read() -> None:
    assert read("<!-- note --> - Always run tests\n<!-- multi\nline --> Never push\n") == [
        (1, (), "Always run tests"),
        (3, (), "Never push"),
    ]


def test_headings_lose_their_closing_hashes_and_extra_spaces() -> None:
    assert read("## Code  Style ##\n- x\n### C#\n- y\n") == [
        (2, ("Code Style",), "x"),
        (4, ("C#",), "y"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "# a" + " " * 100_000 + "x",
        "# " + " \t" * 50_000,
        "-" + " " * 100_000 + "x",
        "- " * 50_000 + "x",
        "```" + "`" * 100_000 + "x\n```" + "`" * 100_000,
    ],
)
def test_long_lines_are_read_in_linear_time(line: str) -> None:
    # A pattern that backtracked on such lines took minutes (a 1 MB line: hours).
    parse_markdown(line + "\n- after\n", "long.md")


def test_every_line_that_markdown_misreads_is_escaped_to_read_back() -> None:
    for content in ["```\nunclosed", "---", "- -", "~~~~", "text\n***\nmore\n```"]:
        written = writable_content(content)
        assert written is not None
        read_back = parse_markdown(render_markdown([MarkdownItem(written, None)], header=""), "")
        assert [m.content for m in read_back] == [written]
    assert writable_content("Build:\n```sh\nmake\n```") == "Build:\n```sh\nmake\n```"
