"""Storage: the ports every backend implements, and the backends that ship.

Import backends from here; :mod:`contextfs.testing.store_contract` holds the suite
a new backend must pass.
"""

from .base import OBJECT_KINDS as OBJECT_KINDS
from .base import ObjectStore as ObjectStore
from .base import ReflogEntry as ReflogEntry
from .base import RefStore as RefStore
from .base import Store as Store
from .base import StoredObject as StoredObject
from .memory import MemoryStore as MemoryStore
from .sqlite import SqliteStore as SqliteStore

__all__ = [
    "OBJECT_KINDS",
    "MemoryStore",
    "ObjectStore",
    "RefStore",
    "ReflogEntry",
    "SqliteStore",
    "Store",
    "StoredObject",
]
