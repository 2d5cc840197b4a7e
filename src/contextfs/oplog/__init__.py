"""Live collaboration: a Lamport-clocked, multi-process-safe op log per session.

The seed's API (``OpEntry``, ``OpLogCheckpoint``, ``make_op_entry``, ``OpLog``,
``list_sessions``) with its defects fixed; see :mod:`contextfs.oplog.log`.
:class:`OpLogBackend` is the port both backends implement: files
(:class:`OpLog`) and PostgreSQL (``contextfs.oplog.postgres_log.PostgresOpLog``,
which needs the optional psycopg, so it is not imported here).
"""

from .base import OpLogBackend as OpLogBackend
from .context_ops import CONTEXT_DOMAIN as CONTEXT_DOMAIN
from .context_ops import add_atom_op as add_atom_op
from .context_ops import add_molecule_op as add_molecule_op
from .context_ops import remove_atom_op as remove_atom_op
from .context_ops import set_fields_op as set_fields_op
from .crystallise import OplogCommit as OplogCommit
from .entry import OpEntry as OpEntry
from .entry import OpLogCheckpoint as OpLogCheckpoint
from .entry import check_session_id as check_session_id
from .entry import make_op_entry as make_op_entry
from .entry import merge_key as merge_key
from .log import CorruptLogError as CorruptLogError
from .log import Cut as Cut
from .log import LogVerification as LogVerification
from .log import OpLog as OpLog
from .log import ReceiveResult as ReceiveResult
from .log import Repair as Repair
from .log import list_sessions as list_sessions

__all__ = [
    "CONTEXT_DOMAIN",
    "CorruptLogError",
    "Cut",
    "LogVerification",
    "OpEntry",
    "OpLog",
    "OpLogBackend",
    "OpLogCheckpoint",
    "OplogCommit",
    "ReceiveResult",
    "Repair",
    "add_atom_op",
    "add_molecule_op",
    "check_session_id",
    "list_sessions",
    "make_op_entry",
    "merge_key",
    "remove_atom_op",
    "set_fields_op",
]
