"""Write a revision back as a CLAUDE.md-style Markdown file: best memories first, in a budget."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInputError
from ..expand.tokens import TiktokenTokenizer, Tokenizer
from ..model.ids import short
from ..model.objects import MemoryAtom
from ..repo import Repository
from .markdown import MarkdownItem, bullet_text, heading_text, render_markdown

#: Ranked memories looked at past the last one that fitted before giving up.
PATIENCE = 256


@dataclass(frozen=True, slots=True)
class MarkdownExport:
    """The file's text and how much of the revision it holds."""

    text: str
    written: int
    tokens: int
    commit: str


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
    come in the order of their best memory. Purged memories are left out.
    """
    tokens = tokenizer or TiktokenTokenizer()
    commit = repo.resolve(revision)
    header = f"Memories of {revision} ({short(commit)}), best first; written by contextfs export"
    chosen: list[MarkdownItem] = []
    headings: set[str | None] = {None}
    used = tokens.count(render_markdown([], header=header)) + 1  # and a blank line
    if budget is not None and used > budget:
        raise InvalidInputError(f"a budget of {budget} tokens does not fit even the file's header")
    misses = 0
    for atom in repo.ranked_atoms(revision):
        if repo.is_purged(atom.digest):
            continue
        item = _item(atom)
        cost = tokens.count(bullet_text(item.content))
        if item.heading is not None and item.heading not in headings:
            cost += tokens.count(heading_text(item.heading))
        if budget is not None and used + cost > budget:
            misses += 1
            if misses > PATIENCE:
                break
            continue
        misses = 0
        chosen.append(item)
        headings.add(item.heading)
        used += cost
    text = render_markdown(chosen, header=header)
    while budget is not None and chosen and tokens.count(text) > budget:
        chosen.pop()  # token counts of parts need not add up exactly: trim the worst
        text = render_markdown(chosen, header=header)
    return MarkdownExport(text=text, written=len(chosen), tokens=tokens.count(text), commit=commit)


def _item(atom: MemoryAtom) -> MarkdownItem:
    return MarkdownItem(atom.content, atom.tags[0] if atom.tags else None)
