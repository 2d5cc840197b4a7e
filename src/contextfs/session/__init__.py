"""Session payloads: tiered context for an agent's turn, and deltas between turns."""

from .delta import COMPONENTS as COMPONENTS
from .delta import StaleDeltaError as StaleDeltaError
from .delta import apply_delta as apply_delta
from .delta import build_delta as build_delta
from .delta import hash_component as hash_component
from .delta import hashes_of as hashes_of

__all__ = [
    "COMPONENTS",
    "StaleDeltaError",
    "apply_delta",
    "build_delta",
    "hash_component",
    "hashes_of",
]
