"""The Repository facade: services as attributes, and delegates that match them exactly.

Every public method of ``Repository`` either opens, closes or composes, or
is a one-line delegate that takes exactly its service method's parameters,
defaults and return type and carries its documentation, so the facade and the
services can never drift apart.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from contextfs import Repository
from contextfs.services.assembler import ContextAssembler
from contextfs.services.integrity import Integrity
from contextfs.services.objects import ObjectReader
from contextfs.services.oplogs import OpLogSessions
from contextfs.services.refs import Refs
from contextfs.services.workspace import Workspace

SERVICES: dict[str, type] = {
    "objects": ObjectReader,
    "refs": Refs,
    "workspace": Workspace,
    "assembler": ContextAssembler,
    "oplogs": OpLogSessions,
    "integrity": Integrity,
}
#: Each delegate: facade method -> (service attribute, service method).
DELEGATES = {
    "load_commit": ("objects", "commit"),
    "is_purged": ("objects", "is_purged"),
    "memory_id": ("objects", "memory_id"),
    "head": ("refs", "head"),
    "resolve": ("refs", "resolve"),
    "branches": ("refs", "branches"),
    "reflog": ("refs", "reflog"),
    "gc": ("integrity", "gc"),
    "tags": ("refs", "tags"),
    "create_branch": ("refs", "create_branch"),
    "delete_branch": ("refs", "delete_branch"),
    "create_tag": ("refs", "create_tag"),
    "delete_tag": ("refs", "delete_tag"),
    "update_ref": ("refs", "update_ref"),
    "add": ("workspace", "add"),
    "add_atoms": ("workspace", "add_atoms"),
    "stage": ("workspace", "stage"),
    "add_molecule": ("workspace", "add_molecule"),
    "remove": ("workspace", "remove"),
    "update_entry": ("workspace", "update_entry"),
    "status": ("workspace", "status"),
    "commit": ("workspace", "commit"),
    "switch": ("workspace", "switch"),
    "reset": ("workspace", "reset"),
    "revert": ("workspace", "revert"),
    "merge": ("workspace", "merge"),
    "conflicts": ("workspace", "conflicts"),
    "resolve_conflict": ("workspace", "resolve_conflict"),
    "abort_merge": ("workspace", "abort_merge"),
    "ranked_atoms": ("assembler", "ranked_atoms"),
    "search": ("assembler", "search"),
    "context": ("assembler", "context"),
    "expand": ("assembler", "expand"),
    "session_payload": ("assembler", "session_payload"),
    "turn_context": ("assembler", "turn_context"),
    "verify_receipt": ("assembler", "verify_receipt"),
    "molecules": ("assembler", "molecules"),
    "relevance_lattice": ("assembler", "relevance_lattice"),
    "add_relevance_edge": ("assembler", "add_relevance_edge"),
    "oplog": ("oplogs", "oplog"),
    "oplog_sessions": ("oplogs", "sessions"),
    "commit_oplog": ("oplogs", "commit"),
    "revert_actor": ("oplogs", "revert_actor"),
    "revert_session": ("oplogs", "revert_session"),
    "prove": ("integrity", "prove"),
    "verify": ("integrity", "verify"),
    "prune_workspaces": ("integrity", "prune_workspaces"),
    "purge": ("integrity", "purge"),
}
#: Public methods that open or close, or compose several services.
COMPOSED = {
    "init",
    "open",
    "memory",
    "create",
    "transaction",
    "set_embedder",
    "index",
    "close",
    "log",
    "show",
    "compressed",
    "diff",
    "snapshot",
    "count",
    "get",
    "stream",
}


@pytest.mark.parametrize(("facade", "target"), sorted(DELEGATES.items()))
def test_a_delegate_has_its_service_methods_signature_and_docs(
    facade: str, target: tuple[str, str]
) -> None:
    attribute, method = target
    ours = getattr(Repository, facade)
    theirs = getattr(SERVICES[attribute], method)
    assert inspect.signature(ours) == inspect.signature(theirs)
    assert ours.__doc__ == theirs.__doc__


def test_every_public_method_is_a_delegate_or_composed() -> None:
    methods = {
        n
        for n, m in vars(Repository).items()
        if inspect.isfunction(m) or isinstance(m, classmethod)
    }
    public = {name for name in methods if not name.startswith("_")}
    assert public == DELEGATES.keys() | COMPOSED


def test_the_services_are_attributes_sharing_one_store(tmp_path: Path) -> None:
    with Repository.init(tmp_path) as repo:
        for attribute, cls in SERVICES.items():
            service = getattr(repo, attribute)
            assert isinstance(service, cls)
        assert repo.objects.store is repo.refs.store is repo.workspace.store is repo.store
        assert repo.assembler.trees is repo.workspace.trees is repo.trees
        atom = repo.add("The services share one store", "Fact")
        commit = repo.commit("through the facade")
        assert repo.refs.head() == commit
        assert repo.objects.memory_id(atom[:8]) == atom
        assert [c.id for c in repo.objects.log([repo.refs.resolve_id("HEAD")])] == [commit]
