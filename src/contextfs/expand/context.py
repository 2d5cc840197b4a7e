"""The seed's materialised context, :class:`ExpandedContext`, and its rendering.

:class:`ExpandedContext` is what expansion produces; it renders itself as prompt
text under a budget measured with a real tokenizer (DESIGN.md section 2, defect
9). The change it is expanded from, :class:`~contextfs.model.context.CompressedContext`,
is a model object with an identity of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInputError
from ..model.objects import MemoryAtom, MemoryMolecule
from ..model.timeutil import to_micros
from .tokens import Tokenizer, default_tokenizer

__all__ = ["ExpandedContext", "rank_key", "render_line"]


def rank_key(atom: MemoryAtom) -> tuple[float, int, str]:
    """Sort key for "most relevant first": relevance, then newest, then id.

    The id breaks every remaining tie, so any set of atoms has one order.
    """
    return (-atom.relevance_score, -to_micros(atom.timestamp), atom.content_hash)


def render_line(atom: MemoryAtom) -> str:
    """Render one atom as the seed does: ``[Type] content``."""
    return f"[{atom.type_sig}] {atom.content}"


@dataclass(frozen=True, slots=True)
class ExpandedContext:
    """A materialised context: the atoms and molecules a version holds.

    Attributes:
        atoms: The atoms, most relevant first (see :func:`rank_key`).
        molecules: The molecules, in the order they were added.
        expansion_path: Context ids from the root to the expanded context.
        total_tokens_estimate: Tokens of the full rendering, counted with the
            expander's tokenizer (a real count, despite the seed's name).
        type_summary: ``str(type)`` to how many atoms have that type.
    """

    atoms: list[MemoryAtom]
    molecules: list[MemoryMolecule]
    expansion_path: list[str]
    total_tokens_estimate: int
    type_summary: dict[str, int]

    def to_prompt_context(
        self, max_tokens: int | None = None, tokenizer: Tokenizer | None = None
    ) -> str:
        """Render one ``[Type] content`` line per atom, most relevant first.

        Args:
            max_tokens: The budget. The returned text, counted by ``tokenizer``,
                never exceeds it: atoms are taken in relevance order, and an atom
                that does not fit is skipped so smaller ones after it may still fit.
                None renders every atom.
            tokenizer: What counts tokens; cl100k_base by default.

        Returns:
            The lines joined with ``"\\n"`` (no trailing newline).

        Raises:
            InvalidInputError: ``max_tokens`` is not a non-negative int.
        """
        lines = [render_line(atom) for atom in sorted(self.atoms, key=rank_key)]
        if max_tokens is None:
            return "\n".join(lines)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            raise InvalidInputError(f"max_tokens must be a non-negative int, got {max_tokens!r}")
        return fit_lines(lines, max_tokens, tokenizer or default_tokenizer())


def fit_lines(lines: list[str], budget: int, tokenizer: Tokenizer) -> str:
    """Join the greedy selection of ``lines`` that fits ``budget`` tokens."""
    return "\n".join(lines[i] for i in select_lines(lines, budget, tokenizer))


def select_lines(lines: list[str], budget: int, tokenizer: Tokenizer) -> list[int]:
    """Return the indices of the greedy selection of ``lines`` that fits ``budget``.

    Lines are taken in order; one that does not fit is skipped so smaller ones
    after it may still fit. Every line starts with ``[``, and cl100k_base never
    merges text across a ``"\n["`` boundary, so the count of the joined text is
    the sum of each non-last line counted with its newline plus the last line
    counted alone. That makes the greedy pass linear. The result is then counted
    whole; if a pluggable tokenizer broke the additivity, the exact (quadratic)
    greedy pass runs instead, so the budget holds for every tokenizer.
    """
    chosen: list[int] = []
    spent = 0  # tokens of the chosen lines, each with its trailing newline
    for index, line in enumerate(lines):
        if spent + tokenizer.count(line) <= budget:
            chosen.append(index)
            spent += tokenizer.count(line + "\n")
    if tokenizer.count("\n".join(lines[i] for i in chosen)) <= budget:
        return chosen
    return _select_lines_exact(lines, budget, tokenizer)


def _select_lines_exact(lines: list[str], budget: int, tokenizer: Tokenizer) -> list[int]:
    chosen: list[int] = []
    text = ""
    for index, line in enumerate(lines):
        candidate = f"{text}\n{line}" if text else line
        if tokenizer.count(candidate) <= budget:
            chosen.append(index)
            text = candidate
    return chosen
