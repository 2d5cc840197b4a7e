"""ContextFS: version control for what an AI agent knows.

Everything starts at :class:`Repository`. The seed vocabulary (``MemoryAtom``,
``TypeSignature``, ``CompressedContext``, ``ExpanderFunctor``, ...) is exported
here too, so programs written against the seeds run with only their imports
changed.
"""

from ._version import __version__ as __version__
from .errors import AmbiguousRevisionError as AmbiguousRevisionError
from .errors import ConcurrentUpdateError as ConcurrentUpdateError
from .errors import ConflictError as ConflictError
from .errors import ContextFSError as ContextFSError
from .errors import CorruptLogError as CorruptLogError
from .errors import CorruptObjectError as CorruptObjectError
from .errors import InvalidInputError as InvalidInputError
from .errors import MergeConflictError as MergeConflictError
from .errors import MissingObjectError as MissingObjectError
from .errors import NonFastForwardError as NonFastForwardError
from .errors import NothingToDoError as NothingToDoError
from .errors import RepositoryExistsError as RepositoryExistsError
from .errors import RepositoryLocationError as RepositoryLocationError
from .errors import RepositoryNotFoundError as RepositoryNotFoundError
from .errors import RevisionError as RevisionError
from .errors import StoreError as StoreError
from .errors import TypeSignatureError as TypeSignatureError
from .errors import UncommittedChangesError as UncommittedChangesError
from .errors import UnknownRevisionError as UnknownRevisionError
from .errors import VerificationError as VerificationError
from .expand import CompressedContext as CompressedContext
from .expand import ContextQuery as ContextQuery
from .expand import ContextStore as ContextStore
from .expand import ExpandedContext as ExpandedContext
from .expand import ExpanderFunctor as ExpanderFunctor
from .expand import ExpansionChunk as ExpansionChunk
from .expand import IncrementalExpander as IncrementalExpander
from .expand import InMemoryContextStore as InMemoryContextStore
from .expand import ObjectContextStore as ObjectContextStore
from .expand import Receipt as Receipt
from .expand import RelevanceLattice as RelevanceLattice
from .expand import StreamingExpander as StreamingExpander
from .expand import TiktokenTokenizer as TiktokenTokenizer
from .expand import Tokenizer as Tokenizer
from .expand import WordEstimateTokenizer as WordEstimateTokenizer
from .integrity.fsck import VerifyReport as VerifyReport
from .integrity.proofs import MembershipProof as MembershipProof
from .integrity.proofs import NonMembershipProof as NonMembershipProof
from .integrity.proofs import proof_from_json as proof_from_json
from .integrity.proofs import verify as verify_proof
from .integrity.purge import PurgeRecord as PurgeRecord
from .integrity.seedtree import ContextMerkleTree as ContextMerkleTree
from .model.ids import ObjectId as ObjectId
from .model.objects import MemoryAtom as MemoryAtom
from .model.objects import MemoryMolecule as MemoryMolecule
from .model.types import T_ANY as T_ANY
from .model.types import T_BOOL as T_BOOL
from .model.types import T_CONTEXT as T_CONTEXT
from .model.types import T_DICT as T_DICT
from .model.types import T_FLOAT as T_FLOAT
from .model.types import T_INT as T_INT
from .model.types import T_LIST as T_LIST
from .model.types import T_STRING as T_STRING
from .model.types import T_TIMESTAMP as T_TIMESTAMP
from .model.types import Kind as Kind
from .model.types import TypeSignature as TypeSignature
from .records import Change as Change
from .records import CommitInfo as CommitInfo
from .records import ConflictInfo as ConflictInfo
from .records import MergeResult as MergeResult
from .records import PromptContext as PromptContext
from .records import SearchHit as SearchHit
from .records import Status as Status
from .records import TurnContext as TurnContext
from .repo import Repository as Repository
from .session.turns import CostWeights as CostWeights
from .session.turns import TurnBlock as TurnBlock
from .session.turns import TurnCost as TurnCost
from .store import MemoryStore as MemoryStore
from .store import ReflogEntry as ReflogEntry
from .store import SqliteStore as SqliteStore
from .store import Store as Store

__all__ = [
    "T_ANY",
    "T_BOOL",
    "T_CONTEXT",
    "T_DICT",
    "T_FLOAT",
    "T_INT",
    "T_LIST",
    "T_STRING",
    "T_TIMESTAMP",
    "AmbiguousRevisionError",
    "Change",
    "CommitInfo",
    "CompressedContext",
    "ConcurrentUpdateError",
    "ConflictError",
    "ConflictInfo",
    "ContextFSError",
    "ContextMerkleTree",
    "ContextQuery",
    "ContextStore",
    "CorruptLogError",
    "CorruptObjectError",
    "CostWeights",
    "ExpandedContext",
    "ExpanderFunctor",
    "ExpansionChunk",
    "InMemoryContextStore",
    "IncrementalExpander",
    "InvalidInputError",
    "Kind",
    "MembershipProof",
    "MemoryAtom",
    "MemoryMolecule",
    "MemoryStore",
    "MergeConflictError",
    "MergeResult",
    "MissingObjectError",
    "NonFastForwardError",
    "NonMembershipProof",
    "NothingToDoError",
    "ObjectContextStore",
    "ObjectId",
    "PromptContext",
    "PurgeRecord",
    "Receipt",
    "ReflogEntry",
    "RelevanceLattice",
    "Repository",
    "RepositoryExistsError",
    "RepositoryLocationError",
    "RepositoryNotFoundError",
    "RevisionError",
    "SearchHit",
    "SqliteStore",
    "Status",
    "Store",
    "StoreError",
    "StreamingExpander",
    "TiktokenTokenizer",
    "Tokenizer",
    "TurnBlock",
    "TurnContext",
    "TurnCost",
    "TypeSignature",
    "TypeSignatureError",
    "UncommittedChangesError",
    "UnknownRevisionError",
    "VerificationError",
    "VerifyReport",
    "WordEstimateTokenizer",
    "proof_from_json",
    "verify_proof",
]
