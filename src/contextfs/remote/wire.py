"""A remote served by ``contextfs serve``: the :class:`~contextfs.remote.peers.Peer` over the wire.

Each peer call is one or a few requests (``docs/PROTOCOL.md`` section 4.4):
REFS; FETCH_PACK, whose answer is the pack itself, in PACK data messages; and
for a push UPLOAD_PACK with the pack's bytes, then UPDATE_REFS. The server
runs :mod:`contextfs.remote.pack` on its side, so what it stores is
re-hashed and link-checked there, and it holds an uploaded pack (in memory,
or on disk once it is large) until UPDATE_REFS unpacks it with the ref moves
in one transaction: a push cut off half way leaves the server's store
untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, Self

from ..client import Client
from ..errors import InvalidInputError
from ..model.ids import ID_HEX_LENGTH, from_hex
from .objects import Received, RefUpdate

#: The WELCOME feature of a server that sends and takes packs.
PACKS: Final = "pack"
#: Pack bytes per UPLOAD_PACK request at most (the connection's frame limit may lower it).
UPLOAD_BYTES: Final = 1 << 20
#: Room left in a frame for the UPLOAD_PACK map itself.
FRAME_HEADROOM: Final = 1024


class WirePeer:
    """A peer reached over the wire protocol at ``ctx://host:port`` (``ctxs://`` with TLS)."""

    def __init__(
        self, url: str, *, token: str | None = None, ca: str | os.PathLike[str] | None = None
    ) -> None:
        self.location = url
        self._client = Client(url, token=token, ca=ca)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def refs(self) -> dict[str, str]:
        """REFS."""
        return self._client.refs()

    def fetch_pack(
        self, wants: Sequence[bytes], haves: Sequence[bytes], purges: Sequence[bytes] = ()
    ) -> Iterator[bytes]:
        """FETCH_PACK: the server's pack, part by part."""
        self._require_packs()
        return self._client.fetch_pack(
            [w.hex() for w in wants], [h.hex() for h in haves], [p.hex() for p in purges]
        )

    def receive_pack(
        self, pack: Iterable[bytes], updates: Sequence[RefUpdate], *, force: bool
    ) -> Received:
        """UPLOAD_PACK the pack in parts that fit a frame, then UPDATE_REFS: all or nothing."""
        self._require_packs()
        budget = self._frame_budget()
        for chunk in pack:
            for start in range(0, len(chunk), budget):
                self._client.upload_pack(chunk[start : start + budget])
        result = self._client.update_refs([(u.name, u.old, u.new) for u in updates], force=force)
        purged = result.get("purged", [])
        return Received(
            objects=int(result.get("objects", 0)),
            bytes=int(result.get("bytes", 0)),
            updated=list(updates),
            # The server erased these; the texts stay on its side.
            purged={
                from_hex(h): "" for h in purged if isinstance(h, str) and len(h) == ID_HEX_LENGTH
            },
            ignored_purges=int(result.get("ignored_purges", 0)),
        )

    def _require_packs(self) -> None:
        if PACKS not in self._client.features():
            raise InvalidInputError(
                f"{self.location} runs a ContextFS too old to send or take packs;"
                " upgrade the server"
            )

    def _frame_budget(self) -> int:
        """Payload bytes one UPLOAD may carry: the connection's frame limit, less headroom."""
        return min(UPLOAD_BYTES, self._client.max_frame() - FRAME_HEADROOM)

    def close(self) -> None:
        """Close the connection."""
        self._client.close()
