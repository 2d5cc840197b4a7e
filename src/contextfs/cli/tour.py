"""``contextfs tour``: build a small store with a real merge, and show it.

The tour is the README's first command, so it must work anywhere in a couple
of seconds: it writes only inside its own folder (a fresh temporary one unless
given), makes the history through the same :class:`Repository` calls the other
commands use, and prints it with the same renderers.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

from rich.console import Console
from rich.text import Text

from ..expand.tokens import default_tokenizer
from ..model.ids import short
from ..repo import Repository
from . import render

PLANNER = "agent:planner"
RESEARCHER = "agent:researcher"
BUDGET = 60

# (content, type, relevance, source)
FIRST_MEMORIES = [
    ("The user prefers concise answers with a code example first.", "Preference", 0.9, "chat"),
    ("The user works from Lisbon (UTC+0) and reads answers on a phone.", "Fact", 0.8, "chat"),
    ("Project Atlas is a Python 3.12 service deployed on Kubernetes.", "Fact", 0.7, "repo"),
    ("Run the tests with `pytest -q`; they must stay under 60 seconds.", "Fact", 0.5, "repo"),
    ("Decision: store events in PostgreSQL 16, not MongoDB.", "Decision", 0.6, "meeting"),
]
RESEARCH_MEMORIES = [
    ("asyncpg inserts events 3x faster than psycopg2 in our benchmark.", "Finding", 0.7, "bench"),
    ("Open question: archive events older than 90 days to S3?", "Question", 0.4, "notes"),
]
MAIN_MEMORY = ("The user wants a progress summary every Friday.", "Preference", 0.8, "chat")
SHARED = 4  # the decision both branches hold; research raises its relevance
RAISED_RELEVANCE = 0.95
#: A question that shares no word with the memory that answers it (the decision).
BY_MEANING = "what database do we use"


def run_tour(path: Path | None, out: Console) -> Path:
    """Build the example store in ``path`` (None: a new temporary folder) and narrate it.

    Returns:
        The folder holding ``.contextfs``.

    Raises:
        RepositoryExistsError: ``path`` already holds a repository.
    """
    folder = Path(tempfile.mkdtemp(prefix="contextfs-tour-")) if path is None else path
    folder.mkdir(parents=True, exist_ok=True)
    with Repository.init(folder) as repo:
        _build(repo, out, folder)
        _show(repo, out)
    _next_steps(out, folder)
    return folder


def _step(out: Console, number: int, text: str) -> None:
    out.print()
    out.print(Text(f"{number}. {text}", style="bold magenta"))


def _stage(repo: Repository, memories: list[tuple[str, str, float, str]]) -> list[str]:
    return [
        repo.add(content, type_name, relevance=relevance, source=source)
        for content, type_name, relevance, source in memories
    ]


def _build(repo: Repository, out: Console, folder: Path) -> None:
    _step(out, 1, f"Create a store in {folder} (like `contextfs init`).")
    _step(out, 2, "Stage what the agent learned and commit it on main (`add`, `commit`).")
    ids = _stage(repo, FIRST_MEMORIES)
    first = repo.commit("Remember the user and the project basics", author=PLANNER)
    out.print(f"   {len(ids)} memories in commit {short(first)}")
    _step(out, 3, "Branch `research`: new findings, and the decision becomes more relevant.")
    repo.switch("research", create=True)
    _stage(repo, RESEARCH_MEMORIES)
    repo.update_entry(ids[SHARED], relevance=RAISED_RELEVANCE)
    research = repo.commit("Research: database drivers and retention", author=RESEARCHER)
    out.print(f"   research is at {short(research)}")
    _step(out, 4, "Meanwhile on main, the planner learns something else.")
    repo.switch("main")
    _stage(repo, [MAIN_MEMORY])
    ahead = repo.commit("Note the weekly reporting cadence", author=PLANNER)
    out.print(f"   main is at {short(ahead)}")
    _step(out, 5, "Merge research into main: a three-way merge of the two snapshots.")
    result = repo.merge("research", author=PLANNER)
    out.print(f"   {result.status}: commit {short(result.commit or '')}")


def _show(repo: Repository, out: Console) -> None:
    _step(out, 6, "The history, as `contextfs log --graph` draws it:")
    infos = list(repo.log())
    labels = render.decorations(repo.head(), repo.current_branch, repo.branches(), repo.tags())
    for line in render.graph_lines(infos, labels):
        out.print(Text("   ").append_text(line))
    _step(out, 7, "What the merge brought to main, as `contextfs diff main~1 main` shows it:")
    out.print(render.changes_table(repo.diff("main~1", "main")))
    _step(out, 8, f"The memory as prompt context in {BUDGET} tokens (`expand --budget {BUDGET}`):")
    text = repo.expand("HEAD", budget=BUDGET).to_prompt_context(BUDGET)
    for prompt_line in text.splitlines():
        out.print(Text("   " + prompt_line))
    out.print(f"   ({default_tokenizer().count(text)} tokens, most relevant first)")
    _step(out, 9, f'Find by meaning, offline (`contextfs search "{BY_MEANING}"`): no word shared.')
    (best,) = repo.search(BY_MEANING, limit=1)
    out.print(Text(f"   [{best.atom.type_sig}] {best.atom.content}"))
    embedder = repo.embedder.id if repo.embedder is not None else "no embedder"
    out.print(f"   (found by its words and meaning; vectors by {embedder})")


def _next_steps(out: Console, folder: Path) -> None:
    where = shlex.quote(str(folder))
    out.print()
    out.print(Text(f"The store is in {folder / '.contextfs'}. Try next:", style="bold"))
    for command in (
        f"cd {where}",
        "contextfs status",
        "contextfs log --graph",
        "contextfs show HEAD",
        "contextfs expand --budget 100 --json",
        'contextfs search "where does the user live"',
        'contextfs add "The user likes dark mode." --type Preference --relevance 0.7',
        'contextfs commit -m "Remember the theme"',
        "contextfs export -o memories.jsonl",
    ):
        out.print(f"   {command}")
