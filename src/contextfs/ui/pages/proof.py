"""Proof: that a memory is (or is not) in a commit, checked here and downloadable as JSON.

The server checks every proof it builds, against the commit id it resolved
(never the id the proof carries), before it shows or serves one: a page that
says "verified" has run :func:`contextfs.integrity.proofs.verify`. The JSON is
``Proof.to_json``, the format ``contextfs verify-proof`` reads, so anyone can
check it again without this server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ...errors import InvalidInputError, UnknownRevisionError, VerificationError
from ...history.commits import decode_commit
from ...integrity.proofs import MembershipProof, NonMembershipProof, Proof, verify
from ...model import canonical
from ...model.ids import ID_HEX_LENGTH, MIN_PREFIX_LENGTH, ObjectId, from_hex, short
from ...model.merkle import leaf_hash
from ...records import Memory
from ...repo import Repository
from ...services.objects import MEMORY_KINDS
from ..app import UI, Page
from .commit import check_revision, describe

#: A memory id as a URL may carry it: a hex prefix at least as long as ``resolve`` needs.
_MEMORY = re.compile(rf"[0-9a-fA-F]{{{MIN_PREFIX_LENGTH},{ID_HEX_LENGTH}}}")


def check_memory(text: str) -> str:
    """Return ``text`` lowercased if it is spelled like a memory id; else raise."""
    if _MEMORY.fullmatch(text) is None:
        raise InvalidInputError(
            f"a memory id is {MIN_PREFIX_LENGTH} to {ID_HEX_LENGTH} hex digits, got {text!r}"
        )
    return text.lower()


@dataclass(frozen=True, slots=True)
class StepView:
    """One tree level of a proof: the node, where the proven entry sits, its audit path."""

    depth: int
    node: str
    interior: bool
    index: int
    size: int
    hashes: tuple[str, ...]
    nibble: int | None  # interior: the key's nibble, which names the child below
    child: str | None  # interior: that child's node id


@dataclass(frozen=True, slots=True)
class ProofView:
    """A checked proof as the page shows it: leaf first, up the path, to the root."""

    kind: str
    member: bool
    key: str
    commit_id: str
    root: str
    leaf: str | None  # a membership proof's entry bytes
    leaf_hash: str | None
    leaves: tuple[str, ...]  # a non-membership proof's deepest node, complete
    deepest: str  # the node the path ends at: the leaf node, or where the key's path stops
    steps: tuple[StepView, ...]  # leaf level first, the root's level last
    levels: int  # tree levels the proof covers (with the deepest node of a non-membership one)


# -- pure: a checked proof → what the page shows ----------------------------------------


def proof_view(proof: Proof, trusted: str) -> ProofView:
    """Lay out ``proof`` for people, once it is known to hold for commit ``trusted``.

    Raises:
        VerificationError: the proof does not hold for ``trusted``; nothing of
            it is shown, since a page must not present an unchecked path.
    """
    if not verify(proof, trusted):
        raise VerificationError(
            f"the store built a proof of {short(proof.key)} that does not verify"
            f" for commit {short(trusted)}"
        )
    root = decode_commit(proof.commit).tree
    # Node ids from the root down: each interior entry names the child below it.
    nodes, links = [root], []
    for step in reversed(proof.path):
        if step.child is not None:
            nibble, child_id, *_ = canonical.decode(step.child, kind="tree child")
            nodes.append(child_id)
            links.append((int(nibble), bytes(child_id).hex()))
    steps = []
    for depth, step in enumerate(reversed(proof.path)):
        nibble, child = links[depth] if step.child is not None else (None, None)
        steps.append(
            StepView(
                depth=depth,
                node=nodes[depth].hex(),
                interior=step.child is not None,
                index=step.index,
                size=step.size,
                hashes=tuple(h.hex() for h in step.hashes),
                nibble=nibble,
                child=child,
            )
        )
    item = proof.item if isinstance(proof, MembershipProof) else None
    leaves = proof.leaves if isinstance(proof, NonMembershipProof) else ()
    return ProofView(
        kind=proof.kind,
        member=item is not None,
        key=proof.key.hex(),
        commit_id=trusted,
        root=root.hex(),
        leaf=None if item is None else item.hex(),
        leaf_hash=None if item is None else leaf_hash(item).hex(),
        leaves=tuple(leaf.hex() for leaf in leaves),
        deepest=nodes[-1].hex(),
        steps=tuple(reversed(steps)),
        levels=len(nodes),
    )


# -- over the repository ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proven:
    """A proof with what the page says around it."""

    proof: Proof
    commit_id: ObjectId
    summary: str
    memory: Memory | None
    purged: bool


def stored_memory(repo: Repository, ref: str) -> ObjectId:
    """The full id of the stored memory ``ref`` names.

    :meth:`Repository.memory_id` takes a full id as is, so that a
    non-membership proof can name anything; this page proves memories the
    store holds, so an id it never held is unknown here (a 404, not a proof
    of absence).

    Raises:
        RevisionError: no stored memory matches ``ref``, or several do.
    """
    oid = repo.memory_id(ref)
    stored = repo.store.get_object(from_hex(oid))
    if stored is None or stored.kind not in MEMORY_KINDS:
        raise UnknownRevisionError(f"unknown memory {ref!r}")
    return oid


def prove_memory(repo: Repository, revision: str, ref: str) -> Proven:
    """Prove memory ``ref`` in or out of ``revision``, with its text where the commit has it."""
    commit_id = repo.resolve(revision)
    oid = stored_memory(repo, ref)
    proof = repo.prove(oid, commit_id)
    memory = repo.get(oid, commit_id) if isinstance(proof, MembershipProof) else None
    summary = repo.load_commit(from_hex(commit_id)).summary
    return Proven(proof, commit_id, summary, memory, repo.is_purged(oid))


def proof_filename(key: str, commit_id: str) -> str:
    """The downloaded file's name: which memory, which commit, at a glance."""
    return f"contextfs-proof-{short(key)}-{short(commit_id)}.json"


def _ids(request: Request) -> tuple[str, str]:
    return check_revision(request.path_params["rev"]), check_memory(request.path_params["atom"])


async def proof_page(ui: UI, request: Request) -> Response:
    revision, ref = _ids(request)
    proven: Proven = await ui.run(lambda repo: prove_memory(repo, revision, ref))
    view = proof_view(proven.proof, proven.commit_id)
    kind_text = describe(proven.memory) if proven.memory is not None else None
    return ui.render(
        request,
        "proof.html",
        view=view,
        proven=proven,
        revision=revision,
        kind_text=kind_text,
        download=f"/prove/{proven.commit_id}/{view.key}.json",
        filename=proof_filename(view.key, proven.commit_id),
    )


async def proof_json(ui: UI, request: Request) -> Response:
    """The proof as a file ``contextfs verify-proof --commit ID`` accepts (checked first)."""
    revision, ref = _ids(request)
    proven: Proven = await ui.run(lambda repo: prove_memory(repo, revision, ref))
    view = proof_view(proven.proof, proven.commit_id)  # raises unless it verifies
    name = proof_filename(view.key, proven.commit_id)
    return Response(
        proven.proof.to_json(indent=2) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


ROUTES: list[tuple[str, Page, list[str]]] = [
    # The .json route first: the page's ``{atom}`` would match ``ID.json`` too.
    ("/prove/{rev:path}/{atom}.json", proof_json, ["GET"]),
    ("/prove/{rev:path}/{atom}", proof_page, ["GET"]),
]
