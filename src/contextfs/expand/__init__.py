"""Expansion: turn a version of memory into ranked prompt context under a token budget.

The names here are the seed's expansion vocabulary (``contextfs_expander``),
rebuilt on ContextFS's object model with full-length ids, iterative expansion,
lossless compaction and real token counts.
"""

from .context import CompressedContext as CompressedContext
from .context import ExpandedContext as ExpandedContext
from .context import decode_context as decode_context
from .context import rank_key as rank_key
from .context import render_line as render_line
from .contextstore import ContextStore as ContextStore
from .contextstore import InMemoryContextStore as InMemoryContextStore
from .contextstore import ObjectContextStore as ObjectContextStore
from .expander import ExpanderFunctor as ExpanderFunctor
from .expander import IncrementalExpander as IncrementalExpander
from .expander import compact_atoms as compact_atoms
from .expander import compaction_key as compaction_key
from .lattice import LatticeCycleError as LatticeCycleError
from .lattice import RelevanceLattice as RelevanceLattice
from .query import ContextQuery as ContextQuery
from .tokens import TiktokenTokenizer as TiktokenTokenizer
from .tokens import Tokenizer as Tokenizer
from .tokens import WordEstimateTokenizer as WordEstimateTokenizer
from .tokens import default_tokenizer as default_tokenizer

__all__ = [
    "CompressedContext",
    "ContextQuery",
    "ContextStore",
    "ExpandedContext",
    "ExpanderFunctor",
    "InMemoryContextStore",
    "IncrementalExpander",
    "LatticeCycleError",
    "ObjectContextStore",
    "RelevanceLattice",
    "TiktokenTokenizer",
    "Tokenizer",
    "WordEstimateTokenizer",
    "compact_atoms",
    "compaction_key",
    "decode_context",
    "default_tokenizer",
    "rank_key",
    "render_line",
]
