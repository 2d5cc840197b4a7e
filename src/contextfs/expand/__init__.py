"""Expansion: turn a version of memory into ranked prompt context under a token budget.

The names here are the seed's expansion vocabulary (``contextfs_expander``),
rebuilt on ContextFS's object model with full-length ids, iterative expansion,
lossless compaction and real token counts.
"""

from ..model.context import CompressedContext as CompressedContext
from ..model.context import decode_context as decode_context
from .context import ExpandedContext as ExpandedContext
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
from .receipt import Receipt as Receipt
from .receipt import ReceiptMismatch as ReceiptMismatch
from .receipt import ReceiptVerification as ReceiptVerification
from .receipt import build_receipt as build_receipt
from .receipt import prompt_sha256 as prompt_sha256
from .receipt import verify as verify
from .receipt import verify_receipt as verify_receipt
from .render import Selection as Selection
from .render import check_format as check_format
from .render import fit as fit
from .render import render as render
from .stream import ExpansionChunk as ExpansionChunk
from .stream import StreamingExpander as StreamingExpander
from .stream import chunk_atoms as chunk_atoms
from .stream import iter_chunks as iter_chunks
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
    "ExpansionChunk",
    "InMemoryContextStore",
    "IncrementalExpander",
    "LatticeCycleError",
    "ObjectContextStore",
    "Receipt",
    "ReceiptMismatch",
    "ReceiptVerification",
    "RelevanceLattice",
    "Selection",
    "StreamingExpander",
    "TiktokenTokenizer",
    "Tokenizer",
    "WordEstimateTokenizer",
    "build_receipt",
    "check_format",
    "chunk_atoms",
    "compact_atoms",
    "compaction_key",
    "decode_context",
    "default_tokenizer",
    "fit",
    "iter_chunks",
    "prompt_sha256",
    "rank_key",
    "render",
    "render_line",
    "verify",
    "verify_receipt",
]
