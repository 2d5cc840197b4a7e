"""Registering ``contextfs mcp`` in AI clients' config files (``contextfs connect``).

:data:`CLIENTS` says where each client keeps its MCP servers and in what shape;
:func:`plan_connect`, :func:`plan_disconnect` and :func:`inspect` decide, from
a file's bytes, what it should hold; :func:`apply` writes that, backed up
and atomically, inside :func:`locked` so concurrent runs take turns.
Planning is pure, so a command plans every file before it writes any.
"""

from __future__ import annotations

from .clients import CLIENTS as CLIENTS
from .clients import Client as Client
from .clients import Host as Host
from .clients import Scope as Scope
from .clients import client_named as client_named
from .clients import server_command as server_command
from .configfile import CommentsWouldBeLostError as CommentsWouldBeLostError
from .configfile import ConfigFileError as ConfigFileError
from .disk import ConfigChangedError as ConfigChangedError
from .disk import ReadOnlyConfigError as ReadOnlyConfigError
from .disk import apply as apply
from .disk import backup_path as backup_path
from .disk import check_writable as check_writable
from .disk import locked as locked
from .disk import read_config as read_config
from .plan import Change as Change
from .plan import EntryConflictError as EntryConflictError
from .plan import Registration as Registration
from .plan import Target as Target
from .plan import inspect as inspect
from .plan import plan_connect as plan_connect
from .plan import plan_disconnect as plan_disconnect

__all__ = [
    "CLIENTS",
    "Change",
    "Client",
    "CommentsWouldBeLostError",
    "ConfigChangedError",
    "ConfigFileError",
    "EntryConflictError",
    "Host",
    "ReadOnlyConfigError",
    "Registration",
    "Scope",
    "Target",
    "apply",
    "backup_path",
    "check_writable",
    "client_named",
    "inspect",
    "locked",
    "plan_connect",
    "plan_disconnect",
    "read_config",
    "server_command",
]
