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
from collections.abc import Callable, Collection, Sequence
from typing import Final

from ..embed.base import Embedder, lexical_weight
from ..errors import InvalidInputError, MissingObjectError
from ..history.tree import item_key
from ..model.objects import ATOM, decode_atom, is_molecule_item
from .indexes import Indexes
from .storage import Storage

#: Texts embedded and stored per batch while catching up.
CATCH_UP_BATCH: Final = 256

#: Told ``(embedded so far, to embed in all)`` after every batch of a catch-up.
Progress = Callable[[int, int], None]


class Embeddings:
    """The repository's embedder, its vectors, and semantic candidates for a snapshot.

    A repository without an embedder (``None``, named ``"none"``) finds
    memories by their words only.
    """

    def __init__(self, storage: Storage, indexes: Indexes, embedder: Embedder | None) -> None:
        self.store = storage.store
        self.trees = storage.trees
        self._indexes = indexes
        self.embedder = embedder
        self._lock = threading.Lock()
        self._complete: dict[str, bytes] = {}  # embedder id -> a snapshot fully embedded

    @property
    def embedder_id(self) -> str | None:
        """The id of what makes this repository's vectors (``None``: it has no embedder)."""
        return self.embedder.id if self.embedder is not None else None

    @property
    def lexical_weight(self) -> float:
        """How much words count against meaning in hybrid retrieval with this embedder."""
        return lexical_weight(self.required())

    def replace(self, embedder: Embedder | None) -> int:
        """Make ``embedder`` the repository's; drop every other embedder's vectors.

        The new one's vectors are made lazily, by the next query that needs
        them or by :meth:`catch_up`. Returns how many vectors were dropped.
        """
        keep = embedder.id if embedder is not None else None
        vectors = self._indexes.vectors
        dropped = 0
        with self.store.transaction():
            for other in vectors.embedders():
                if other != keep:
                    dropped += vectors.drop(other)
        with self._lock:
            self.embedder = embedder
            self._complete.clear()
        return dropped

    def required(self) -> Embedder:
        """The embedder, for work that needs one.

        Raises:
            InvalidInputError: the repository has none.
        """
        if self.embedder is None:
            raise InvalidInputError(
                "this repository has no embedder, so it finds memories by their words only;"
                " choose one with `contextfs config embedder wordllama`"
            )
        return self.embedder

    def nearest(
        self, tree: bytes, text: str, limit: int
    ) -> tuple[dict[bytes, float], dict[bytes, bytes]]:
        """The ``limit`` atoms of snapshot ``tree`` nearest in meaning to ``text``.

        Returns:
            Their cosines by id, and the snapshot items of the candidates the
            search looked up (every one returned among them).
        """
        embedder = self.required()
        self.catch_up(tree)
        query = embedder.embed([text])[0]
        if not query.any():
            return {}, {}  # nothing in the text the embedder knows: it means nothing here
        items: dict[bytes, bytes] = {}

        def in_tree(ids: Sequence[bytes]) -> Collection[bytes]:
            found = self.trees.get_many(tree, ids)
            items.update(found)
            return found.keys()

        found = self._indexes.vectors.nearest(embedder.id, query, limit, in_tree)
        return dict(found), items

    def catch_up(self, tree: bytes, progress: Progress | None = None) -> int:
        """Embed the atoms of ``tree`` that have no vector yet; return how many were embedded.

        Purged atoms (no text left) get none: there is nothing to embed and
        nothing may be derived from what was erased. ``progress`` hears how
        far it has got after every batch (``contextfs index`` draws a bar).
        """
        if self.embedder is None:
            return 0
        embedder = self.embedder.id
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
        keys = None
        if known is not None:
            try:
                keys = [
                    key
                    for key, _, new in self.trees.diff(known, tree)
                    if new is not None and not is_molecule_item(new)
                ]
            except MissingObjectError:
                keys = None  # gc collected that snapshot: check every atom instead
        if keys is None:
            items = self.trees.items(tree)
            keys = [item_key(item) for item in items if not is_molecule_item(item)]
        made = 0
        missing = self._indexes.vectors.missing(embedder, keys)
        for start in range(0, len(missing), CATCH_UP_BATCH):
            made += self._embed(self.embedder, missing[start : start + CATCH_UP_BATCH])
            if progress is not None:
                progress(min(start + CATCH_UP_BATCH, len(missing)), len(missing))
        if not (made and self.store.in_transaction()):  # vectors that may roll back: not done
            self._indexes.vectors.mark_embedded(embedder, tree)
            with self._lock:
                self._complete[embedder] = tree
        return made

    def _embed(self, embedder: Embedder, ids: list[bytes]) -> int:
        texts: dict[bytes, str] = {}
        for oid, stored in self.store.get_objects(ids).items():
            if stored.kind == ATOM and stored.data:  # empty: purged, nothing to embed
                texts[oid] = decode_atom(stored.data)[1]
        if not texts:
            return 0
        rows = embedder.embed(list(texts.values()))
        return self._indexes.vectors.add(embedder.id, list(texts), rows)


__all__ = ["CATCH_UP_BATCH", "Embeddings", "Progress"]
