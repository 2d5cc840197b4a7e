"""Every command's happy path, in-process, and the ``--json`` shape of every reading command."""

from __future__ import annotations

import re
from typing import Any

import pytest

from contextfs.repo import Repository

from .conftest import Cli

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
FULL_ID = re.compile(r"^[0-9a-f]{64}$")


def commit_ids(run: Cli, *revs: str) -> list[str]:
    log: Any = run.json("log", *revs)
    return [c["id"] for c in log]


def test_init_creates_a_repository(run: Cli) -> None:
    result = run("init")
    assert "Initialised empty ContextFS repository" in result.stdout
    assert (run.folder / ".contextfs" / "store.db").is_file()


def test_init_path_and_branch(run: Cli) -> None:
    run("init", "sub", "--branch", "trunk")
    with Repository.open(run.folder / "sub") as repo:
        assert repo.current_branch == "trunk"


def test_add_stages_one_atom_per_text(repo_run: Cli) -> None:
    ids: Any = repo_run.json(
        "add",
        "The user prefers tea.",
        "The user dislikes meetings before 10.",
        "--type",
        "Preference",
        "--relevance",
        "0.75",
        "--source",
        "chat-7",
        "--tag",
        "habits",
        "--tag",
        "user",
        "--abstract",
        "tea",
        "--overview",
        "drinks tea",
    )
    assert len(ids) == 2
    assert all(FULL_ID.match(i) for i in ids)
    status: Any = repo_run.json("status")
    added = {c["id"]: c["new"] for c in status["changes"]}
    assert set(added) == set(ids)
    atom = added[ids[0]]
    assert atom["content"] == "The user prefers tea."
    assert atom["type"] == "Preference"
    assert atom["relevance"] == 0.75
    assert atom["source"] == "chat-7"
    assert atom["tags"] == ["habits", "user"]
    assert (atom["abstract"], atom["overview"]) == ("tea", "drinks tea")
    assert ISO_Z.match(atom["timestamp"])


def test_add_plain_output_and_stdin(repo_run: Cli) -> None:
    result = repo_run("add", "one", "--stdin", input="two\n\nthree\r\n")
    lines = result.stdout.splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "[String] one",
        "[String] two",
        "[String] three",
    ]
    assert len(repo_run.state()[4]) == 3


def test_rm_unstages(repo_run: Cli) -> None:
    ids: Any = repo_run.json("add", "keep", "drop")
    result = repo_run("rm", ids[1][:10])
    assert result.stdout == f"removed {ids[1][:12]}\n"
    status: Any = repo_run.json("status")
    assert [c["id"] for c in status["changes"]] == [ids[0]]


def test_status_for_people(repo_run: Cli) -> None:
    assert "On branch main" in repo_run("status").stdout
    repo_run("add", "User likes tea")
    out = repo_run("status").stdout
    assert "Changes to be committed" in out
    assert "User likes tea" in out


def test_status_json_shape(repo_run: Cli) -> None:
    status: Any = repo_run.json("status")
    assert status == {
        "branch": "main",
        "head": None,
        "clean": True,
        "merging": None,
        "changes": [],
        "conflicts": [],
    }


def test_commit_and_log_json(repo_run: Cli) -> None:
    repo_run("add", "first memory")
    first: Any = repo_run.json("commit", "-m", "First\n\nwith a body")
    repo_run("add", "second memory")
    result = repo_run("commit", "-m", "Second", "--author", "agent:7")
    assert re.match(r"^\[main [0-9a-f]{12}\] Second$", result.stdout.strip())
    log: Any = repo_run.json("log")
    assert [c["summary"] for c in log] == ["Second", "First"]
    newest, oldest = log
    assert oldest["id"] == first["commit"]
    assert oldest["message"] == "First\n\nwith a body"
    assert oldest["author"] == "tester"
    assert newest["author"] == "agent:7"
    assert newest["parents"] == [oldest["id"]]
    assert oldest["parents"] == []
    assert set(newest) == {
        "id",
        "parents",
        "author",
        "timestamp",
        "summary",
        "message",
        "snapshot",
        "generation",
        "metadata",
    }
    assert ISO_Z.match(newest["timestamp"])
    assert FULL_ID.match(newest["snapshot"])
    assert newest["generation"] == 2


def test_commit_allow_empty_and_expect_head(repo_run: Cli) -> None:
    repo_run("commit", "-m", "root", "--allow-empty", "--expect-head", "none")
    (head,) = commit_ids(repo_run)
    repo_run("commit", "-m", "next", "--allow-empty", "--expect-head", head[:8])
    assert len(commit_ids(repo_run)) == 2


def test_author_defaults_to_user_name(repo_run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTEXTFS_AUTHOR")
    monkeypatch.setattr("getpass.getuser", lambda: "ada")
    repo_run("commit", "-m", "x", "--allow-empty")
    log: Any = repo_run.json("log")
    assert log[0]["author"] == "ada"


def test_log_formats(repo_run: Cli) -> None:
    for n in range(3):
        repo_run("add", f"memory {n}")
        repo_run("commit", "-m", f"commit {n}")
    repo_run("tag", "v1", "HEAD~1")
    ids = commit_ids(repo_run)
    oneline = repo_run("log", "--oneline").stdout.splitlines()
    assert oneline == [
        f"{ids[0][:12]} (HEAD -> main) commit 2",
        f"{ids[1][:12]} (tag: v1) commit 1",
        f"{ids[2][:12]} commit 0",
    ]
    assert repo_run("log", "--oneline", "-n", "1").stdout.splitlines() == oneline[:1]
    full = repo_run("log", "v1").stdout
    assert full.startswith(f"commit {ids[1]} (tag: v1)\nAuthor: tester\nDate:   ")
    assert "\n    commit 1\n" in full
    assert "\n    commit 2\n" not in full
    assert len(repo_run.json("log", "-n", "2")) == 2


def make_merge_history(run: Cli) -> dict[str, str]:
    """main: first -> main work -> merge; research: first -> research work."""
    run("add", "shared fact", "--relevance", "0.5")
    run("commit", "-m", "first")
    run("switch", "-c", "research")
    run("add", "research finding")
    run("commit", "-m", "research work")
    run("switch", "main")
    run("add", "main note")
    run("commit", "-m", "main work")
    run("merge", "research", "-m", "Merge research")
    ids = commit_ids(run)
    return dict(zip(["merge", "main", "research", "first"], ids, strict=True))


def test_log_graph_of_a_merge(repo_run: Cli) -> None:
    ids = {name: oid[:12] for name, oid in make_merge_history(repo_run).items()}
    assert repo_run("log", "--graph").stdout.splitlines() == [
        f"*   {ids['merge']} (HEAD -> main) Merge research",
        "|\\",
        f"* | {ids['main']} main work",
        f"| * {ids['research']} (research) research work",
        "|/",
        f"* {ids['first']} first",
    ]


def test_log_several_revisions(repo_run: Cli) -> None:
    ids = make_merge_history(repo_run)
    assert commit_ids(repo_run, "research", "main~1") == [
        ids["main"],
        ids["research"],
        ids["first"],
    ]


def test_show(repo_run: Cli) -> None:
    ids = make_merge_history(repo_run)
    shown: Any = repo_run.json("show", "research")
    assert shown["commit"]["id"] == ids["research"]
    (change,) = shown["changes"]
    assert change["status"] == "added"
    assert change["new"]["content"] == "research finding"
    assert change["old"] is None
    out = repo_run("show").stdout
    assert out.startswith(f"commit {ids['merge']} (HEAD -> main)\nMerge:  ")
    assert "research finding" in out


def test_diff_two_revisions_and_stage(repo_run: Cli) -> None:
    ids = make_merge_history(repo_run)
    changes: Any = repo_run.json("diff", "main~1", "main")
    assert [(c["status"], c["new"]["content"]) for c in changes] == [("added", "research finding")]
    assert repo_run.json("diff", "HEAD") == []
    assert repo_run("diff", "HEAD").stdout == "No differences.\n"
    repo_run("add", "shared fact", "--relevance", "0.9")
    (change,) = repo_run.json("diff", "HEAD")
    assert change["status"] == "changed"
    assert change["fields"] == ["relevance", "timestamp"]
    assert (change["old"]["relevance"], change["new"]["relevance"]) == (0.5, 0.9)
    out = repo_run("diff", ids["first"][:8]).stdout
    assert "relevance 0.5 → 0.9" in out
    assert "research finding" in out


def test_branch_list_create_delete(repo_run: Cli) -> None:
    ids = make_merge_history(repo_run)
    assert repo_run.json("branch") == [
        {"name": "main", "commit": ids["merge"], "current": True},
        {"name": "research", "commit": ids["research"], "current": False},
    ]
    repo_run("branch", "old", ids["first"][:8])
    repo_run("branch", "old", "main", "-f")
    listing = repo_run("branch").stdout
    assert re.search(r"\*\s+main\s+" + ids["merge"][:12], listing)
    assert re.search(r"\n\s+old\s+" + ids["merge"][:12], listing)
    repo_run("branch", "-d", "research")
    repo_run("switch", "-c", "unmerged")
    repo_run("commit", "-m", "x", "--allow-empty")
    repo_run("switch", "main")
    repo_run("branch", "-D", "unmerged")
    names: Any = repo_run.json("branch")
    assert [b["name"] for b in names] == ["main", "old"]


def test_switch_detach(repo_run: Cli) -> None:
    ids = make_merge_history(repo_run)
    assert "detached" in repo_run("switch", "--detach", ids["first"][:8]).stdout
    status: Any = repo_run.json("status")
    assert (status["branch"], status["head"]) == (None, ids["first"])
    assert repo_run("log", "--oneline", "-n", "1").stdout.startswith(f"{ids['first'][:12]} (HEAD) ")
    repo_run("switch", "main")
    assert repo_run.json("status")["branch"] == "main"


def test_tag_list_create_delete(repo_run: Cli) -> None:
    ids = make_merge_history(repo_run)
    repo_run("tag", "v1")
    repo_run("tag", "v0", "HEAD~1")
    assert repo_run.json("tag") == [
        {"name": "v0", "commit": ids["main"]},
        {"name": "v1", "commit": ids["merge"]},
    ]
    assert "main work" in repo_run("tag").stdout
    repo_run("tag", "-d", "v0")
    assert repo_run.json("tag") == [{"name": "v1", "commit": ids["merge"]}]


def test_merge_fast_forward_up_to_date_and_no_ff(repo_run: Cli) -> None:
    repo_run("commit", "-m", "root", "--allow-empty")
    repo_run("branch", "ahead")
    repo_run("switch", "ahead")
    repo_run("add", "x")
    repo_run("commit", "-m", "ahead")
    repo_run("switch", "main")
    assert repo_run("merge", "ahead").stdout.startswith("Fast-forward to ")
    assert repo_run("merge", "ahead").stdout == "Already up to date.\n"
    repo_run("switch", "-c", "side")
    repo_run("add", "y")
    repo_run("commit", "-m", "side")
    repo_run("switch", "main")
    result: Any = repo_run.json("merge", "side", "--no-ff")
    assert result["status"] == "merged"
    assert len(repo_run.json("log")[0]["parents"]) == 2


def conflict_history(run: Cli) -> str:
    """Both branches change the same memory's relevance; return its id."""
    (atom,) = run.json("add", "The user prefers tea.", "--relevance", "0.5")
    run("commit", "-m", "base")
    run("switch", "-c", "other")
    run("add", "The user prefers tea.", "--relevance", "0.1")
    run("commit", "-m", "theirs")
    run("switch", "main")
    run("add", "The user prefers tea.", "--relevance", "0.9")
    run("commit", "-m", "ours")
    return str(atom)


def test_merge_conflict_resolve_and_commit(repo_run: Cli) -> None:
    atom = conflict_history(repo_run)
    before = commit_ids(repo_run)
    result = repo_run("merge", "other", code=6)
    assert result.stderr.startswith("error: merge stopped on 1 conflict(s)")
    assert atom[:12] in result.stdout
    status: Any = repo_run.json("status")
    assert status["merging"] == commit_ids(repo_run, "other")[0]
    (conflict,) = status["conflicts"]
    assert conflict["id"] == atom
    assert (conflict["ours"]["relevance"], conflict["theirs"]["relevance"]) == (0.9, 0.1)
    assert conflict["base"]["relevance"] == 0.5
    repo_run.fails(6, "commit", "-m", "too early")
    assert "commit to finish" in repo_run("resolve", atom[:8], "--ours").stdout
    repo_run("commit", "-m", "merged")
    log: Any = repo_run.json("log")
    assert log[0]["parents"] == [before[0], commit_ids(repo_run, "other")[0]]
    shown: Any = repo_run.json("show")
    assert shown["changes"] == []  # ours won: nothing changed against the first parent


def test_merge_strategy_and_abort(repo_run: Cli) -> None:
    conflict_history(repo_run)
    repo_run("merge", "other", code=6)
    assert "Merge aborted" in repo_run("merge", "--abort").stdout
    assert repo_run.json("status")["clean"] is True
    repo_run("merge", "other", "--strategy", "theirs")
    (change,) = repo_run.json("diff", "HEAD~1", "HEAD")
    assert change["new"]["relevance"] == 0.1


def test_resolve_theirs(repo_run: Cli) -> None:
    atom = conflict_history(repo_run)
    repo_run("merge", "other", "--json", code=6)
    repo_run("resolve", atom, "--theirs")
    repo_run("commit", "-m", "merged")
    (change,) = repo_run.json("diff", "HEAD~1", "HEAD")
    assert change["new"]["relevance"] == 0.1


def test_reset_modes(repo_run: Cli) -> None:
    ids = make_merge_history(repo_run)
    repo_run("reset", "HEAD~1", "--soft")
    status: Any = repo_run.json("status")
    assert status["head"] == ids["main"]
    assert [c["new"]["content"] for c in status["changes"]] == ["research finding"]
    repo_run.fails(6, "reset", ids["first"][:8])
    repo_run("reset", ids["first"][:8], "--hard")
    status = repo_run.json("status")
    assert (status["head"], status["changes"]) == (ids["first"], [])
    repo_run("reset", ids["main"])
    assert repo_run.json("status")["head"] == ids["main"]


def test_revert(repo_run: Cli) -> None:
    make_merge_history(repo_run)
    result = repo_run("revert", "HEAD~1")
    assert result.stdout.startswith("Reverted HEAD~1 in commit ")
    log: Any = repo_run.json("log", "-n", "1")
    assert log[0]["summary"] == 'Revert "main work"'
    (change,) = repo_run.json("diff", "HEAD~1", "HEAD")
    assert (change["status"], change["old"]["content"]) == ("removed", "main note")


def test_help_lists_every_command(run: Cli) -> None:
    out = run("--help").stdout
    for name in ("init", "add", "merge", "expand", "import", "export", "tour"):
        assert name in out


def test_repo_option_and_env(run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    run("init", "store")
    run("--repo", "store", "add", "via option")
    monkeypatch.setenv("CONTEXTFS_DIR", str(run.folder / "store" / ".contextfs"))
    status: Any = run.json("status")
    assert [c["new"]["content"] for c in status["changes"]] == ["via option"]


def test_keyboard_interrupt_exits_130(repo_run: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: Repository) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Repository, "status", interrupted)
    assert repo_run.fails(130, "status") == "error: interrupted"


def test_expand_prints_prompt_context_within_budget(repo_run: Cli) -> None:
    from contextfs.expand.tokens import default_tokenizer

    repo_run("add", "The user prefers tea.", "--type", "Preference", "--relevance", "0.9")
    repo_run("add", "Project Atlas runs on Kubernetes.", "--type", "Fact", "--relevance", "0.5")
    repo_run("add", "A long low-value note " + "blah " * 80, "--relevance", "0.1")
    repo_run("commit", "-m", "memories")
    full = repo_run("expand").stdout.splitlines()
    assert full[:2] == [
        "[Preference] The user prefers tea.",
        "[Fact] Project Atlas runs on Kubernetes.",
    ]
    assert len(full) == 3
    cut = repo_run("expand", "HEAD", "--budget", "20").stdout
    assert cut.splitlines() == full[:2]
    assert default_tokenizer().count(cut.rstrip("\n")) <= 20
    data: Any = repo_run.json("expand", "--budget", "20")
    assert data["budget"] == 20
    assert data["text"] == cut.rstrip("\n")
    assert data["tokens"] == default_tokenizer().count(data["text"]) <= 20
    assert [a["content"] for a in data["atoms"]] == [
        "The user prefers tea.",
        "Project Atlas runs on Kubernetes.",
    ]
    assert data["receipt"]["tokens"] == data["tokens"]
    assert repo_run("expand", "--budget", "0").stdout == ""
    repo_run.fails(5, "expand", "--budget", "-1")


def test_memory_text_is_never_rich_markup(repo_run: Cli) -> None:
    text = "[/x] :smile: [b]x[/b]"
    repo_run("add", text, "--type", "List[String]")
    status = repo_run("status").stdout
    assert text in status
    assert "List[String]" in status
    repo_run("commit", "-m", "[red]message[/red] :smile:")
    assert "[red]message[/red] :smile:" in repo_run("log", "--oneline").stdout
    assert text in repo_run("show").stdout
    assert f"[List[String]] {text}" in repo_run("expand").stdout
