"""Finding a revision's memories by meaning: vectors made on demand, nearest atoms by cosine.

Vectors are derived data, made on the next query that needs them and never
on the ingest path: before a semantic query on a snapshot, the atoms it holds
that have no vector of the repository's embedder are embedded and stored.
Snapshots are immutable, so the last snapshot known to be fully embedded is
remembered, in the vector index so every process shares it, and the next one
is brought up to date through a tree diff, whose cost follows what changed,
not the size of memory.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from typing import Final

from ..embed.base import Embedder
from ..history.tree import item_key
from ..model.objects import ATOM, decode_atom, is_molecule_item
from .indexes import Indexes
from .storage import Storage

#: Texts embedded and stored per batch while catching up.
CATCH_UP_BATCH: Final = 256


class Embeddings:
    """The repository's embedder, its vectors, and semantic candidates for a snapshot."""

    def __init__(self, storage: Storage, indexes: Indexes, embedder: Embedder) -> None:
        self.store = storage.store
        self.trees = storage.trees
        self._indexes = indexes
        self.embedder = embedder
        self._lock = threading.Lock()
        self._complete: dict[str, bytes] = {}  # embedder id -> a snapshot fully embedded

    @property
    def embedder_id(self) -> str:
        """The id of what makes this repository's vectors."""
        return self.embedder.id

    def nearest(
        self, tree: bytes, text: str, limit: int
    ) -> tuple[dict[bytes, float], dict[bytes, bytes]]:
        """The ``limit`` atoms of snapshot ``tree`` nearest in meaning to ``text``.

        Returns:
            Their cosines by id, and the snapshot items of the candidates the
            search looked up (every one returned among them).
        """
        self.catch_up(tree)
        query = self.embedder.embed([text])[0]
        if not query.any():
            return {}, {}  # nothing in the text the embedder knows: it means nothing here
        items: dict[bytes, bytes] = {}

        def in_tree(ids: Sequence[bytes]) -> Collection[bytes]:
            found = self.trees.get_many(tree, ids)
            items.update(found)
            return found.keys()

        found = self._indexes.vectors.nearest(self.embedder_id, query, limit, in_tree)
        return dict(found), items

    def catch_up(self, tree: bytes) -> int:
        """Embed the atoms of ``tree`` that have no vector yet; return how many were embedded.

        Purged atoms (no text left) get none: there is nothing to embed and
        nothing may be derived from what was erased.
        """
        embedder = self.embedder_id
        with self._lock:
            known = self._complete.get(embedder)
        if known == tree:
            return 0
        if known is None:  # another process may have embedded a snapshot already
            known = self._indexes.vectors.embedded_through(embedder)
            if known == tree:
                with self._lock:
                    self._complete[embedder] = tree
                return 0
        if known is None:
            items = self.trees.items(tree)
            keys = [item_key(item) for item in items if not is_molecule_item(item)]
        else:
            keys = [
                key
                for key, _, new in self.trees.diff(known, tree)
                if new is not None and not is_molecule_item(new)
            ]
        made = 0
        missing = self._indexes.vectors.missing(embedder, keys)
        for start in range(0, len(missing), CATCH_UP_BATCH):
            made += self._embed(missing[start : start + CATCH_UP_BATCH])
        if not (made and self.store.in_transaction()):  # vectors that may roll back: not done
            self._indexes.vectors.mark_embedded(embedder, tree)
            with self._lock:
                self._complete[embedder] = tree
        return made

    def _embed(self, ids: list[bytes]) -> int:
        texts: dict[bytes, str] = {}
        for oid, stored in self.store.get_objects(ids).items():
            if stored.kind == ATOM and stored.data:  # empty: purged, nothing to embed
                texts[oid] = decode_atom(stored.data)[1]
        if not texts:
            return 0
        rows = self.embedder.embed(list(texts.values()))
        return self._indexes.vectors.add(self.embedder_id, list(texts), rows)


__all__ = ["CATCH_UP_BATCH", "Embeddings"]
