"""Full-text search over atom content, kept in step with the object store.

Get the index beside a store with :func:`contextfs.backends.search_index_for`;
every backend passes :mod:`contextfs.testing.search_contract`. Queries are
untrusted text, parsed by :func:`parse_query` into quoted terms, phrases and
prefixes; results are ``(atom id, score)`` pairs ranked by FTS5's BM25, best first.
"""

from .base import SearchIndex as SearchIndex
from .base import atom_texts as atom_texts
from .memory import MemorySearchIndex as MemorySearchIndex
from .query import MAX_PHRASES as MAX_PHRASES
from .query import Mode as Mode
from .query import Phrase as Phrase
from .query import SearchQuery as SearchQuery
from .query import fts5_expression as fts5_expression
from .query import parse_query as parse_query
from .query import tokenize as tokenize
from .sqlite_fts import SqliteSearchIndex as SqliteSearchIndex

__all__ = [
    "MAX_PHRASES",
    "MemorySearchIndex",
    "Mode",
    "Phrase",
    "SearchIndex",
    "SearchQuery",
    "SqliteSearchIndex",
    "atom_texts",
    "fts5_expression",
    "parse_query",
    "tokenize",
]
