"""Pruning the workspaces of checkouts that are gone (``contextfs workspace prune``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from contextfs import InvalidInputError, Repository
from contextfs.cli.main import cli
from contextfs.integrity.prune import prune_workspaces, this_machine
from contextfs.store.postgres import PostgresStore


def checkout(folder: Path, url: str, memory: str) -> str:
    """A folder made with init --store, with one memory staged; its workspace's name."""
    with Repository.init(folder, store=url) as repo:
        repo.add(memory)
        assert isinstance(repo.store, PostgresStore)
        assert repo.store.workspace is not None
        return repo.store.workspace


def atoms_of(url: str) -> set[str]:
    with Repository(PostgresStore.open(url)) as repo:
        return {
            data.decode(errors="replace")
            for _, kind, data in repo.store.iter_objects()
            if kind == "atom"
        }


def test_a_deleted_checkout_is_pruned_and_gc_then_collects_its_stage(
    postgres_url: str, tmp_path: Path
) -> None:
    kept = checkout(tmp_path / "kept", postgres_url, "a memory the kept checkout staged")
    gone = checkout(tmp_path / "gone", postgres_url, "a memory only the deleted checkout staged")
    with Repository.open(tmp_path / "kept") as repo:
        store = repo.store
        assert isinstance(store, PostgresStore)
        listed = {info.name: info for info in store.workspaces()}
        assert listed[gone].folder == str((tmp_path / "gone" / ".contextfs").resolve())
        assert listed[gone].machine == this_machine()
        assert "HEAD" in listed[gone].refs
        shutil.rmtree(tmp_path / "gone")
        dry = repo.prune_workspaces(dry_run=True)
        assert [info.name for info in dry.pruned] == [gone]
        assert {info.name for info in store.workspaces()} == {kept, gone}  # nothing changed
        report = repo.prune_workspaces()
        assert [info.name for info in report.pruned] == [gone]
        assert [(info.name, why) for info, why in report.kept] == [(kept, "in use here")]
        assert [info.name for info in store.workspaces()] == [kept]
        assert not store.list_refs("workspaces/")  # a workspace sees no one else's refs anyway
    assert any("only the deleted checkout" in text for text in atoms_of(postgres_url))
    with Repository(PostgresStore.open(postgres_url)) as repo:
        repo.gc(grace_seconds=0)
        assert repo.verify().ok
    texts = atoms_of(postgres_url)
    assert not any("only the deleted checkout" in text for text in texts)
    assert any("the kept checkout staged" in text for text in texts)
    with Repository.open(tmp_path / "kept") as repo:  # the kept checkout is untouched
        assert [change.new for change in repo.status().changes]


def test_other_machines_unrecorded_reused_and_unreadable_checkouts_are_kept(
    postgres_url: str, tmp_path: Path
) -> None:
    here = checkout(tmp_path / "here", postgres_url, "here")
    elsewhere = checkout(tmp_path / "elsewhere", postgres_url, "elsewhere")
    reused = checkout(tmp_path / "reused", postgres_url, "reused")
    with PostgresStore.open(postgres_url, workspace=elsewhere) as store:
        store.register_workspace("/no/such/folder/.contextfs", "another-machine")
    # Opening a workspace by name gives it a HEAD, and no record: as before records were kept.
    PostgresStore.open(postgres_url, workspace="old").close()
    shutil.rmtree(tmp_path / "reused")
    Repository.init(tmp_path / "reused", store=postgres_url).close()  # a new workspace there
    with PostgresStore.open(postgres_url) as bare:
        report = prune_workspaces(bare)
        pruned = [info.name for info in report.pruned]
        why = {info.name: reason for info, reason in report.kept}
    assert pruned == [reused]  # its folder now names another workspace
    assert why[here] == "its checkout exists"
    assert why[elsewhere] == "checked out on another-machine"
    assert why["old"] == "its checkout was not recorded"


def test_a_store_without_workspaces_is_refused_in_one_line(tmp_path: Path) -> None:
    with (
        Repository.init(tmp_path / "r") as repo,
        pytest.raises(InvalidInputError, match="no workspaces"),
    ):
        repo.prune_workspaces()
    result = CliRunner().invoke(cli, ["--repo", str(tmp_path / "r"), "workspace", "list"])
    assert result.exit_code == 5
    assert "no workspaces" in result.output


def test_the_cli_lists_and_prunes(postgres_url: str, tmp_path: Path) -> None:
    kept = checkout(tmp_path / "kept", postgres_url, "kept")
    gone = checkout(tmp_path / "gone", postgres_url, "gone")
    shutil.rmtree(tmp_path / "gone")
    runner = CliRunner()
    repo = ["--repo", str(tmp_path / "kept")]
    listed = runner.invoke(cli, [*repo, "workspace", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"{kept}  {this_machine()}:" in listed.output
    assert "(this one)" in listed.output
    dry = runner.invoke(cli, [*repo, "workspace", "prune", "--dry-run"])
    assert f"would prune {gone}" in dry.output
    done = runner.invoke(cli, [*repo, "workspace", "prune", "--json"])
    assert done.exit_code == 0, done.output
    assert '"pruned": [' in done.output
    again = runner.invoke(cli, [*repo, "workspace", "prune"])
    assert "nothing to prune" in again.output
