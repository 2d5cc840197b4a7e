"""Protocol v1, sans IO: frames, message schemas and the connection state machine.

See ``docs/PROTOCOL.md``. Nothing here does IO; :mod:`contextfs.server` and
:mod:`contextfs.client` drive a :class:`Connection` over asyncio streams.
"""

from .connection import Connection as Connection
from .connection import CreditGranted as CreditGranted
from .connection import Failed as Failed
from .connection import FlowControlBlockedError as FlowControlBlockedError
from .connection import Received as Received
from .connection import Role as Role
from .errors import ErrorCode as ErrorCode
from .errors import ProtocolError as ProtocolError
from .errors import RemoteError as RemoteError
from .messages import MessageType as MessageType

__all__ = [
    "Connection",
    "CreditGranted",
    "ErrorCode",
    "Failed",
    "FlowControlBlockedError",
    "MessageType",
    "ProtocolError",
    "Received",
    "RemoteError",
    "Role",
]
