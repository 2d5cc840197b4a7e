"""A remote served by ``contextfs serve``: the :class:`~contextfs.remote.peers.Peer` over the wire.

Each peer call is one or a few requests (``docs/PROTOCOL.md`` section 4.4):
REFS, OFFER (ids in data batches), HAVE, FETCH, and for a push UPLOAD then
UPDATE_REFS. The server runs :mod:`contextfs.remote.objects` on its side, so
what it stores is re-hashed and link-checked there, and it holds uploads in
memory until UPDATE_REFS stores them with the ref moves in one transaction:
a push cut off half way leaves the server's store untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final, Self

from ..client import Client
from ..errors import InvalidInputError
from ..model.ids import from_hex
from .objects import ObjectRow, Received, RefUpdate

#: Ids per HAVE or FETCH request (the server allows up to 10,000).
IDS_PER_REQUEST: Final = 2000
#: Object bytes per UPLOAD request at most (the connection's frame limit may lower it).
UPLOAD_BYTES: Final = 1 << 20
#: MessagePack bytes per uploaded row beyond its data: the hex id, the kind, framing.
ROW_OVERHEAD: Final = 96
#: Room left in a frame for the UPLOAD map itself.
FRAME_HEADROOM: Final = 1024


class WirePeer:
    """A peer reached over the wire protocol at ``ctx://host:port``."""

    def __init__(self, url: str, *, token: str | None = None) -> None:
        self.location = url
        self._client = Client(url, token=token)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def refs(self) -> dict[str, str]:
        """REFS."""
        return self._client.refs()

    def offer(self, wants: Sequence[bytes], haves: Sequence[bytes]) -> Iterator[list[bytes]]:
        """OFFER, batch by batch."""
        for batch in self._client.offer([w.hex() for w in wants], [h.hex() for h in haves]):
            yield [from_hex(oid) for oid in batch]

    def has_objects(self, ids: Sequence[bytes]) -> set[bytes]:
        """HAVE, in requests of :data:`IDS_PER_REQUEST` ids."""
        present: set[bytes] = set()
        for start in range(0, len(ids), IDS_PER_REQUEST):
            chunk = ids[start : start + IDS_PER_REQUEST]
            present.update(from_hex(oid) for oid in self._client.have([c.hex() for c in chunk]))
        return present

    def get_objects(self, ids: Sequence[bytes]) -> Iterator[ObjectRow]:
        """FETCH, in requests of :data:`IDS_PER_REQUEST` ids.

        The objects are not re-hashed here: :func:`~contextfs.remote.objects.receive`,
        which stores them, re-hashes each once.
        """
        for start in range(0, len(ids), IDS_PER_REQUEST):
            chunk = ids[start : start + IDS_PER_REQUEST]
            for oid, kind, data in self._client.fetch([c.hex() for c in chunk], check=False):
                yield from_hex(oid), kind, data

    def receive(
        self, objects: Iterable[ObjectRow], updates: Sequence[RefUpdate], *, force: bool
    ) -> Received:
        """UPLOAD every object, then UPDATE_REFS; the server stores all or nothing.

        Raises:
            InvalidInputError: an object is too large for one frame of this connection.
        """
        budget = self._frame_budget()
        batch: list[tuple[str, str, bytes]] = []
        size = 0
        for oid, kind, data in objects:
            cost = len(data) + ROW_OVERHEAD
            if cost > budget:
                raise InvalidInputError(
                    f"{kind} {oid.hex()[:16]} is {len(data)} bytes, more than one frame of"
                    f" this connection holds ({budget}); nothing was stored"
                )
            if batch and (size + cost > budget or len(batch) >= IDS_PER_REQUEST):
                self._client.upload(batch)
                batch, size = [], 0
            batch.append((oid.hex(), kind, data))
            size += cost
        if batch:
            self._client.upload(batch)
        result = self._client.update_refs([(u.name, u.old, u.new) for u in updates], force=force)
        return Received(
            objects=int(result.get("objects", 0)),
            bytes=int(result.get("bytes", 0)),
            updated=list(updates),
        )

    def _frame_budget(self) -> int:
        """Payload bytes one UPLOAD may carry: the connection's frame limit, less headroom."""
        return min(UPLOAD_BYTES, self._client.max_frame() - FRAME_HEADROOM)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()
