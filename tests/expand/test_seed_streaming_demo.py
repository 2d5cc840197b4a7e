"""The protocol seed's ``demo_streaming``, run with only its imports changed.

DESIGN.md section 1: the seeds' demos must run against ContextFS with only the
import lines changed: streaming with backpressure, then Merkle proofs.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from contextfs import (
    T_STRING,
    CompressedContext,
    ContextMerkleTree,
    MemoryAtom,
    StreamingExpander,
)


async def demo_streaming() -> None:
    """Demo the streaming expansion"""
    from contextfs import InMemoryContextStore

    store = InMemoryContextStore()
    streaming = StreamingExpander(store, chunk_size=2)
    # Create test context
    now = datetime.now()
    atoms = [
        MemoryAtom(f"Memory fact {i}", T_STRING, now, "test", 0.5 + i * 0.1) for i in range(10)
    ]
    ctx = CompressedContext(
        base_hash=None,
        delta_atoms=atoms,
        delta_molecules=[],
        removed_hashes=set(),
        compression_metadata={},
    )
    print("Streaming expansion:")
    print("-" * 40)
    async for chunk in streaming.expand_stream(ctx, relevance_threshold=0.6):
        print(
            f"Chunk {chunk.chunk_id}: {len(chunk.atoms)} atoms, "
            f"progress={chunk.expansion_progress:.0%}, "
            f"tokens={chunk.cumulative_tokens}"
        )
        for atom in chunk.atoms:
            print(f" [{atom.relevance_score:.2f}] {atom.content}")
    print("\nMerkle tree verification:")
    tree = ContextMerkleTree(atoms)
    print(f"Root hash: {tree.root_hash}")
    proof = tree.get_proof(atoms[0])
    verified = tree.verify_proof(atoms[0].content_hash, proof, tree.root_hash)
    print(f"Proof for atom 0: {'✓ verified' if verified else '✗ failed'}")


def test_seed_streaming_demo_output(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(demo_streaming())
    # Relevance 0.5 (fact 0) is below the threshold; the rest arrive best first,
    # two per chunk. Tokens are real cl100k_base counts of each chunk's
    # "[String] Memory fact N" lines (6 per line, plus 1 for the newline between two).
    lines = capsys.readouterr().out.splitlines()
    root = lines[-2].removeprefix("Root hash: ")
    assert len(root) == 64  # full SHA-256, never the seed's 16 hex digits
    assert lines[-4:] == [
        "",
        "Merkle tree verification:",
        f"Root hash: {root}",
        "Proof for atom 0: ✓ verified",
    ]
    assert lines[:-4] == [
        "Streaming expansion:",
        "----------------------------------------",
        "Chunk 0: 2 atoms, progress=22%, tokens=13",
        " [1.40] Memory fact 9",
        " [1.30] Memory fact 8",
        "Chunk 1: 2 atoms, progress=44%, tokens=26",
        " [1.20] Memory fact 7",
        " [1.10] Memory fact 6",
        "Chunk 2: 2 atoms, progress=67%, tokens=39",
        " [1.00] Memory fact 5",
        " [0.90] Memory fact 4",
        "Chunk 3: 2 atoms, progress=89%, tokens=52",
        " [0.80] Memory fact 3",
        " [0.70] Memory fact 2",
        "Chunk 4: 1 atoms, progress=100%, tokens=58",
        " [0.60] Memory fact 1",
    ]
