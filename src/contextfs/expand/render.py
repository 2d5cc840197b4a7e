"""Prompt rendering: a ranked selection of memories as text, in four formats, under a budget.

This module owns two invariants:

* **The budget holds for the whole text.** :func:`fit` counts the *full* rendered
  prompt, wrappers included, and never returns more tokens than the budget.
* **Memory text can never fake structure** in the ``json`` and ``xml`` formats:
  content is escaped so it can neither close nor open an element or a string.
  ``lines`` (the seed's format) and ``markdown`` show content verbatim and are for
  trusted memory.

Formats (an empty selection renders as the format's empty document):

``lines``
    One :func:`~contextfs.expand.context.render_line` per atom, ``[Type] content``,
    joined with newlines, exactly as the seed; then one line per relation edge,
    ``[MoleculeType] #1 -relation-> #3``, where ``#n`` is the n-th atom of the
    prompt (atom lines carry no ids, so positions are the only labels a reader
    can resolve). A molecule without edges is one line, ``[MoleculeType] #1, #2``.
``markdown``
    ``## Memories`` and one numbered list in rank order (no heading per type:
    that would reorder the ranking). Item ``n`` is ``n. **Type** · relevance 0.90
    · tags: a, b`` with the content on the following lines, indented into the
    item (line endings become ``\n``; nothing else is changed). Then
    ``## Relations``: one bullet per molecule with a sub-list of its edges,
    labelled ``#n`` as in ``lines``.
``json``
    ``{"memories":[...],"molecules":[...]}`` with one object per line, keys in a
    fixed order, no other whitespace, ``ensure_ascii`` off (control characters are
    ``\\u`` escapes, as JSON requires).
``xml``
    ``<memories>`` holding one ``<memory id type relevance [tags]>`` per atom,
    then one ``<molecule id type atoms>`` per molecule with a ``<relation name
    from to/>`` per edge. Characters XML 1.0 cannot carry at all (C0 controls
    other than tab, newline and carriage return; U+FFFE, U+FFFF; surrogates) are
    written as the six visible characters ``\\uXXXX`` (lowercase hex); carriage
    returns, and tabs and newlines in attributes, become character references
    so a parser gives them back unchanged.

Ids in ``json`` and ``xml`` are the first :data:`ID_LENGTH` hex characters of the
atom's or molecule's id, git-style: cheap in tokens, and a repository resolves
them as prefixes. Relevance is shown to two decimals (``json``: rounded to two).

A molecule is rendered only when every one of its atoms is in the prompt: a
relation to a memory the reader cannot see is noise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeGuard, get_args

from ..errors import InvalidInputError
from ..model.objects import MemoryAtom, MemoryMolecule
from .context import render_line
from .tokens import Tokenizer, default_tokenizer

__all__ = [
    "FORMATS",
    "ID_LENGTH",
    "Format",
    "Selection",
    "check_format",
    "fit",
    "is_format",
    "render",
]

#: A prompt rendering.
Format = Literal["lines", "markdown", "json", "xml"]
#: Every rendering, in the order they are documented.
FORMATS: tuple[Format, ...] = get_args(Format)
#: Hex characters of an id shown in a prompt (git's default abbreviation).
ID_LENGTH = 12


def is_format(value: object) -> TypeGuard[Format]:
    """Return True if ``value`` names a rendering."""
    return isinstance(value, str) and value in FORMATS


def check_format(value: object) -> Format:
    """Return ``value`` if it names a rendering.

    Raises:
        InvalidInputError: It does not.
    """
    if not is_format(value):
        raise InvalidInputError(f"format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """What :func:`fit` chose, and the prompt it rendered.

    Attributes:
        format: The rendering used.
        atoms: The chosen atoms, in prompt order (the given rank order).
        molecules: The chosen molecules, in the given order.
        text: The rendered prompt.
        tokens: ``text`` counted by the tokenizer; never above the budget.
    """

    format: Format
    atoms: tuple[MemoryAtom, ...]
    molecules: tuple[MemoryMolecule, ...]
    text: str
    tokens: int


# -- escaping -----------------------------------------------------------------

# XML 1.0 section 2.2 (Char): these cannot appear even as character references.
_XML_FORBIDDEN = [
    *range(0x09),
    0x0B,
    0x0C,
    *range(0x0E, 0x20),
    *range(0xD800, 0xE000),
    0xFFFE,
    0xFFFF,
]
_VISIBLE = {code: f"\\u{code:04x}" for code in _XML_FORBIDDEN}
# "\r" as a reference: parsers turn a literal one into "\n" (XML 1.0 section 2.11).
_XML_MARKUP = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", 13: "&#13;"}
_XML_TEXT = str.maketrans({**_VISIBLE, **_XML_MARKUP})
# Attribute values are also normalised (section 3.3.3): tab and newline become spaces.
_XML_ATTR = str.maketrans({**_VISIBLE, **_XML_MARKUP, ord('"'): "&quot;", 9: "&#9;", 10: "&#10;"})
# Labels in lines/markdown must stay on one line: every C0 control and DEL made visible.
_ONE_LINE = str.maketrans({code: f"\\u{code:04x}" for code in (*range(0x20), 0x7F)})
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _xml_text(text: str) -> str:
    return text.translate(_XML_TEXT)


def _xml_attr(text: str) -> str:
    return text.translate(_XML_ATTR)


def _one_line(text: str) -> str:
    return text.translate(_ONE_LINE)


# -- the four renderings --------------------------------------------------------

#: An atom's 1-based position in the prompt, by atom id.
_Positions = Mapping[str, int]


def _atom_id(atom: MemoryAtom) -> str:
    return atom.content_hash[:ID_LENGTH]


def _edges(molecule: MemoryMolecule) -> Iterable[tuple[str, int, int]]:
    for name, pairs in molecule.relations.items():  # sorted by name on construction
        for i, j in pairs:
            yield name, i, j


def _lines_atom(atom: MemoryAtom, position: int) -> str:
    return render_line(atom)


def _lines_molecule(molecule: MemoryMolecule, positions: _Positions) -> str:
    kind = f"[{_one_line(str(molecule.molecule_type))}]"
    labels = [f"#{positions[atom.content_hash]}" for atom in molecule.atoms]
    edges = [
        f"{kind} {labels[i]} -{_one_line(name)}-> {labels[j]}" for name, i, j in _edges(molecule)
    ]
    return "\n".join(edges) if edges else f"{kind} {', '.join(labels)}"


def _markdown_atom(atom: MemoryAtom, position: int) -> str:
    marker = f"{position}. "
    head = f"{marker}**{_one_line(str(atom.type_sig))}** · relevance {atom.relevance_score:.2f}"
    if atom.tags:
        head += f" · tags: {', '.join(_one_line(tag) for tag in atom.tags)}"
    # Every content line is indented into the item, so content cannot end the
    # list or start a heading of its own (CommonMark 5.2); blank lines stay empty.
    indent = " " * len(marker)
    body = "\n".join(indent + line if line else "" for line in _LINE_BREAK.split(atom.content))
    return f"{head}\n{body}"


def _markdown_molecule(molecule: MemoryMolecule, positions: _Positions) -> str:
    labels = [f"#{positions[atom.content_hash]}" for atom in molecule.atoms]
    lines = [f"- **{_one_line(str(molecule.molecule_type))}**: {', '.join(labels)}"]
    lines += [
        f"  - {labels[i]} -{_one_line(name)}-> {labels[j]}" for name, i, j in _edges(molecule)
    ]
    return "\n".join(lines)


def _iso_utc(atom: MemoryAtom) -> str:
    # isoformat pads years below 1000 (strftime does not, on glibc).
    return atom.timestamp.replace(tzinfo=None).isoformat() + "Z"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _json_atom(atom: MemoryAtom, position: int) -> str:
    return _json(
        {
            "id": _atom_id(atom),
            "type": str(atom.type_sig),
            "content": atom.content,
            "relevance": round(atom.relevance_score, 2),
            "tags": list(atom.tags),
            "source": atom.source_hash,
            "time": _iso_utc(atom),
        }
    )


def _json_molecule(molecule: MemoryMolecule, positions: _Positions) -> str:
    return _json(
        {
            "id": molecule.molecule_hash[:ID_LENGTH],
            "type": str(molecule.molecule_type),
            "atoms": [_atom_id(atom) for atom in molecule.atoms],
            "relations": {
                name: [list(pair) for pair in pairs] for name, pairs in molecule.relations.items()
            },
        }
    )


def _xml_atom(atom: MemoryAtom, position: int) -> str:
    tags = f' tags="{_xml_attr(", ".join(atom.tags))}"' if atom.tags else ""
    return (
        f'<memory id="{_atom_id(atom)}" type="{_xml_attr(str(atom.type_sig))}" '
        f'relevance="{atom.relevance_score:.2f}"{tags}>{_xml_text(atom.content)}</memory>'
    )


def _xml_molecule(molecule: MemoryMolecule, positions: _Positions) -> str:
    ids = [_atom_id(atom) for atom in molecule.atoms]
    head = (
        f'<molecule id="{molecule.molecule_hash[:ID_LENGTH]}" '
        f'type="{_xml_attr(str(molecule.molecule_type))}" atoms="{" ".join(ids)}"'
    )
    edges = [
        f'<relation name="{_xml_attr(name)}" from="{ids[i]}" to="{ids[j]}"/>'
        for name, i, j in _edges(molecule)
    ]
    if not edges:
        return head + "/>"
    return "\n".join([head + ">", *edges, "</molecule>"])


@dataclass(frozen=True, slots=True)
class _Layout:
    """How one format wraps its blocks.

    A non-empty prompt is ``opening + sep.join(atoms) + closing`` without
    molecules, or ``opening + sep.join(atoms) + middle + sep.join(molecules) +
    closing_molecules`` with them. Every block starts with a character that is
    not whitespace, and ``opening``, ``middle`` and ``sep`` end with a newline:
    :func:`fit` relies on that shape (see :func:`_fit_additive`).
    """

    empty: str
    opening: str
    sep: str
    closing: str
    middle: str
    closing_molecules: str
    atom: Callable[[MemoryAtom, int], str]
    molecule: Callable[[MemoryMolecule, _Positions], str]

    def compose(self, atoms: Sequence[str], molecules: Sequence[str]) -> str:
        """Join rendered blocks into the whole prompt."""
        if not atoms:
            return self.empty
        head = self.opening + self.sep.join(atoms)
        if not molecules:
            return head + self.closing
        return head + self.middle + self.sep.join(molecules) + self.closing_molecules


_LAYOUTS: dict[str, _Layout] = {
    "lines": _Layout("", "", "\n", "", "\n", "", _lines_atom, _lines_molecule),
    "markdown": _Layout(
        "## Memories",
        "## Memories\n",
        "\n",
        "",
        "\n## Relations\n",
        "",
        _markdown_atom,
        _markdown_molecule,
    ),
    "json": _Layout(
        '{"memories":[],"molecules":[]}',
        '{"memories":[\n',
        ",\n",
        '\n],"molecules":[]}',
        '\n],"molecules":[\n',
        "\n]}",
        _json_atom,
        _json_molecule,
    ),
    "xml": _Layout(
        "<memories>\n</memories>",
        "<memories>\n",
        "\n",
        "\n</memories>",
        "\n",
        "\n</memories>",
        _xml_atom,
        _xml_molecule,
    ),
}


def _positions(atoms: Sequence[MemoryAtom]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for position, atom in enumerate(atoms, 1):
        positions.setdefault(atom.content_hash, position)
    return positions


def _complete(molecules: Iterable[MemoryMolecule], positions: _Positions) -> list[MemoryMolecule]:
    return [m for m in molecules if all(a.content_hash in positions for a in m.atoms)]


def render(
    atoms: Iterable[MemoryAtom], molecules: Iterable[MemoryMolecule] = (), fmt: Format = "lines"
) -> str:
    """Render memories as prompt text, atoms in the order given.

    Args:
        atoms: The atoms, already ranked.
        molecules: Molecules; one is rendered only if all its atoms are in ``atoms``.
        fmt: The rendering (see the module docstring).

    Returns:
        The prompt, without a trailing newline. Equal to the text :func:`fit`
        gives for a budget everything fits in.

    Raises:
        InvalidInputError: ``fmt`` is not a known format.
    """
    layout = _LAYOUTS[check_format(fmt)]
    chosen = list(atoms)
    positions = _positions(chosen)
    return layout.compose(
        [layout.atom(atom, n) for n, atom in enumerate(chosen, 1)],
        [layout.molecule(m, positions) for m in _complete(molecules, positions)],
    )


# -- fitting a budget ------------------------------------------------------------


def fit(
    atoms: Iterable[MemoryAtom],
    molecules: Iterable[MemoryMolecule],
    fmt: Format,
    budget: int | None,
    tokenizer: Tokenizer | None = None,
    *,
    patience: int | None = None,
) -> Selection:
    """Choose the memories whose whole rendered prompt fits ``budget`` tokens.

    Atoms are taken greedily in the given (ranked) order: one that does not fit
    is skipped, so smaller ones after it may still fit. Then molecules, in the
    given order, take what budget is left: one is kept if all its atoms were
    chosen and the prompt with it still fits. Atoms come first because they are
    the memories; a molecule only relates them.

    With cl100k_base this costs one or two tokenizer calls per atom and molecule
    plus one count of the final text, and the result is exactly the greedy
    selection (see :func:`_fit_additive` for the proof). If the final count
    disagrees with the additive sum, as it may for a pluggable tokenizer, the
    selection is recomputed by counting every candidate prompt whole (quadratic).
    So the budget holds for every tokenizer; for one whose counts do not add up
    at line starts the selection may, when the sums happen to agree at the end,
    differ from the exact greedy one in which atoms it skipped.

    Args:
        atoms: The candidate atoms, best first.
        molecules: The candidate molecules.
        fmt: The rendering.
        budget: The most tokens the prompt may have; None takes everything.
        tokenizer: What counts tokens; cl100k_base by default.
        patience: With a budget, stop looking after this many atoms in a row
            did not fit (None: try every atom). ``atoms`` is then read lazily
            and only up to that point, so a ranked stream over a huge snapshot
            costs what the budget holds, not what the snapshot holds.

    Returns:
        The selection and its prompt. If nothing is chosen the prompt is the
        format's empty document, or ``""`` when even that exceeds the budget.

    Raises:
        InvalidInputError: ``fmt`` is unknown or ``budget`` is not a non-negative int.
    """
    layout = _LAYOUTS[check_format(fmt)]
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int) or budget < 0
    ):
        raise InvalidInputError(f"budget must be a non-negative integer, got {budget!r}")
    counter = tokenizer or default_tokenizer()
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int)):
        raise InvalidInputError(f"patience must be an integer, got {patience!r}")
    groups = list(molecules)
    if budget is None:
        candidates = list(atoms)
        chosen, kept = candidates, _complete(groups, _positions(candidates))
        text, tokens = _finish(layout, chosen, kept, counter)
        return Selection(
            format=fmt, atoms=tuple(chosen), molecules=tuple(kept), text=text, tokens=tokens
        )
    candidates = []
    chosen, kept, estimate = _fit_additive(
        layout, _reading(atoms, candidates), groups, budget, counter, patience
    )
    text, tokens = _finish(layout, chosen, kept, counter)
    if tokens != estimate:
        chosen, kept = _fit_exact(layout, candidates, groups, budget, counter)
        text, tokens = _finish(layout, chosen, kept, counter)
    if not chosen and tokens > budget:
        text, tokens = "", 0
    return Selection(
        format=fmt, atoms=tuple(chosen), molecules=tuple(kept), text=text, tokens=tokens
    )


def _finish(
    layout: _Layout,
    chosen: list[MemoryAtom],
    kept: list[MemoryMolecule],
    counter: Tokenizer,
) -> tuple[str, int]:
    positions = _positions(chosen)
    text = layout.compose(
        [layout.atom(atom, n) for n, atom in enumerate(chosen, 1)],
        [layout.molecule(m, positions) for m in kept],
    )
    return text, counter.count(text)


def _reading(atoms: Iterable[MemoryAtom], into: list[MemoryAtom]) -> Iterator[MemoryAtom]:
    """Yield ``atoms``, keeping each one read in ``into`` (for the exact fallback)."""
    for atom in atoms:
        into.append(atom)
        yield atom


def _fit_additive(
    layout: _Layout,
    atoms: Iterable[MemoryAtom],
    molecules: list[MemoryMolecule],
    budget: int,
    counter: Tokenizer,
    patience: int | None = None,
) -> tuple[list[MemoryAtom], list[MemoryMolecule], int]:
    """Greedy selection counting each block once, by additivity at block boundaries.

    cl100k_base splits text into pieces with a regex and merges within each
    piece only. No piece can run from a newline into a following non-space
    character: the alternatives that match a newline either end right after it
    or match whitespace alone. The regex has no look-behind, and its look-ahead
    and end anchor act on whitespace runs only, so the pieces on either side
    are the same counted alone or together. Hence when ``a`` ends with a
    newline and ``b`` starts with a non-space, ``count(a + b) == count(a) +
    count(b)``. Every layout cuts
    into such pieces: the opening, each non-last block with its separator, and
    the last block with whatever closes the prompt. A candidate is therefore
    tested as ``spent + count(block + closing)`` and, once chosen, adds
    ``count(block + sep)`` to ``spent``.

    Returns:
        The chosen atoms and molecules, and the prompt's count under this model
        (the empty document's count when no atom is chosen).
    """
    opening = counter.count(layout.opening) if layout.opening else 0
    chosen: list[MemoryAtom] = []
    blocks: list[str] = []
    spent = opening  # the opening and every chosen block with its separator
    total = 0  # the prompt's count with the last chosen block closing it
    misses = 0
    for atom in atoms:
        block = layout.atom(atom, len(chosen) + 1)
        cost = counter.count(block + layout.closing)
        if spent + cost <= budget:
            total = spent + cost
            chosen.append(atom)
            blocks.append(block)
            spent += counter.count(block + layout.sep)
            misses = 0
        else:
            misses += 1
            if patience is not None and misses >= patience:
                break
    if not chosen:
        return [], [], counter.count(layout.empty)
    positions = _positions(chosen)
    candidates = _complete(molecules, positions)
    if not candidates:
        return chosen, [], total
    # With molecules the last atom block is followed by the middle instead.
    spent += counter.count(blocks[-1] + layout.middle) - counter.count(blocks[-1] + layout.sep)
    kept: list[MemoryMolecule] = []
    for molecule in candidates:
        block = layout.molecule(molecule, positions)
        cost = counter.count(block + layout.closing_molecules)
        if spent + cost <= budget:
            total = spent + cost
            kept.append(molecule)
            spent += counter.count(block + layout.sep)
    return chosen, kept, total


def _fit_exact(
    layout: _Layout,
    atoms: list[MemoryAtom],
    molecules: list[MemoryMolecule],
    budget: int,
    counter: Tokenizer,
) -> tuple[list[MemoryAtom], list[MemoryMolecule]]:
    """The same greedy pass, counting every candidate prompt whole (quadratic)."""
    chosen: list[MemoryAtom] = []
    blocks: list[str] = []
    for atom in atoms:
        block = layout.atom(atom, len(chosen) + 1)
        if counter.count(layout.compose([*blocks, block], ())) <= budget:
            chosen.append(atom)
            blocks.append(block)
    positions = _positions(chosen)
    kept: list[MemoryMolecule] = []
    extra: list[str] = []
    for molecule in _complete(molecules, positions):
        block = layout.molecule(molecule, positions)
        if counter.count(layout.compose(blocks, [*extra, block])) <= budget:
            kept.append(molecule)
            extra.append(block)
    return chosen, kept
