"""Write a revision back as a CLAUDE.md-style Markdown file: best memories first, in a budget."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInputError
from ..expand.tokens import TiktokenTokenizer, Tokenizer
from ..model.ids import short
from ..repo import Repository
from .markdown import (
    MarkdownItem,
    bullet_text,
    heading_text,
    render_markdown,
    writable_content,
)

#: What the first line of a file this module wrote says: import reads such a file as a view.
EXPORT_MARK = "written by contextfs export"
#: Ranked memories looked at past the last one that fitted before giving up.
PATIENCE = 256


#: Skipped memories tried again once the file's real size is known.
REFILL = 64


@dataclass(frozen=True, slots=True)
class MarkdownExport:
    """The file's text and how much of the revision it holds."""

    text: str
    written: int
    tokens: int
    commit: str
    escaped: int  # memories written with a line escaped, so they read back as one memory
    unwritable: int  # memories no Markdown bullet reads back as (left out)


def export_markdown(
    repo: Repository,
    revision: str = "HEAD",
    *,
    budget: int | None = None,
    tokenizer: Tokenizer | None = None,
) -> MarkdownExport:
    """The best memories of ``revision`` that fit ``budget`` tokens, as Markdown.

    Memories are taken best first (the order ``context`` ranks them in);
    each goes under a ``##`` heading named by its first tag, and the headings
    come in the order of their best memory. Purged memories are left out. A
    memory with a line that Markdown would read as a code fence or a break is
    written with that line escaped (``\\```), so the file reads back as the
    same memories.
    """
    tokens = tokenizer or TiktokenTokenizer()
    commit = repo.resolve(revision)
    header = f"Memories of {revision} ({short(commit)}), best first; {EXPORT_MARK}"
    chosen: list[tuple[int, MarkdownItem]] = []
    skipped: list[tuple[int, MarkdownItem]] = []
    headings: set[str | None] = {None}
    used = tokens.count(render_markdown([], header=header)) + 1  # and a blank line
    if budget is not None and used > budget:
        raise InvalidInputError(f"a budget of {budget} tokens does not fit even the file's header")
    misses = escaped = unwritable = 0
    for rank, atom in enumerate(repo.ranked_atoms(revision)):
        if repo.is_purged(atom.digest):
            continue
        content = writable_content(atom.content)
        if content is None:
            unwritable += 1
            continue
        escaped += content != atom.content
        item = MarkdownItem(content, atom.tags[0] if atom.tags else None)
        cost = tokens.count(bullet_text(item.content))
        if item.heading is not None and item.heading not in headings:
            cost += tokens.count(heading_text(item.heading))
        if budget is not None and used + cost > budget:
            if len(skipped) < REFILL:
                skipped.append((rank, item))
            misses += 1
            if misses > PATIENCE:
                break
            continue
        misses = 0
        chosen.append((rank, item))
        headings.add(item.heading)
        used += cost
    text = _render(chosen, header)
    if budget is not None:
        # Token counts of parts need not add up to the whole: trim the worst that
        # overflow, then try what was skipped against the real count.
        while chosen and tokens.count(text) > budget:
            skipped.insert(0, chosen.pop())
            text = _render(chosen, header)
        for candidate in sorted(skipped):
            fuller = sorted([*chosen, candidate])
            trial = _render(fuller, header)
            if tokens.count(trial) <= budget:
                chosen, text = fuller, trial
    return MarkdownExport(
        text=text,
        written=len(chosen),
        tokens=tokens.count(text),
        commit=commit,
        escaped=escaped,
        unwritable=unwritable,
    )


def _render(ranked: list[tuple[int, MarkdownItem]], header: str) -> str:
    return render_markdown([item for _, item in ranked], header=header)
