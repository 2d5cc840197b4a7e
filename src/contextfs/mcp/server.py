"""The MCP server: the tools of :mod:`.tools` and :mod:`.history`, and two resources.

Invariants this module owns:

* every tool's arguments are checked against its schema strictly (no unknown
  argument, no coercion), and a bad argument comes back as a tool error that
  names it, in one line;
* a :class:`~contextfs.errors.ContextFSError` (or an OS refusal) raised by a
  tool becomes a tool error carrying the library's one-line message; anything
  else is a bug: the client gets a generic tool error, the server logs the
  traceback on stderr and keeps serving;
* tool functions are synchronous and run in the SDK's worker threads, so a
  slow store never blocks the event loop (the repository is thread-safe).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import reprlib
import types
from collections.abc import Callable, Iterator
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, PrivateAttr, ValidationError

from .._version import __version__
from ..errors import ContextFSError, PermissionDeniedError, RevisionError
from ..model.ids import from_hex
from ..model.objects import ATOM, MemoryAtom, decode_atom
from ..repo import Repository
from .access import check_tool, grant_of, granted
from .history import HistoryTools
from .shapes import memory_out
from .tools import DEFAULT_CONTEXT_BUDGET, MemoryTools
from .writer import SessionWriter

SERVER_NAME = "contextfs"
CONTEXT_URI = "contextfs://context"
ATOM_URI = "contextfs://atom/{id}"
INSTRUCTIONS = (
    "ContextFS is this agent's versioned memory. recall searches it; context gives the best"
    " prompt for a token budget (with a receipt that proves which version made it); session"
    " gives a tiered payload per turn, then only what changed. remember adds memories and"
    " forget removes one; both are committed at once unless told otherwise. history, diff,"
    " branch, switch, merge, revert, verify and prove work on its history as git's commands do."
)

#: How bad argument values are shown in tool errors.
_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 40
_shown.maxlist = _shown.maxdict = 4

ToolSpec = tuple[Callable[..., Any], ToolAnnotations]


class ContextFSTool(Tool):
    """A tool whose failures reach the client as one clear line (see the module docstring)."""

    #: The repository it works on (its caller's token is checked against it).
    _repo: Repository | None = PrivateAttr(default=None)

    async def run(
        self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False
    ) -> Any:
        """Run the tool as its caller's token allows; errors become one-line tool errors."""
        try:
            with granted(grant_of(_asgi_scope(context))):
                if self._repo is not None:
                    check_tool(self.name, arguments, self._repo)
                return await super().run(arguments, context, convert_result)
        except PermissionDeniedError as exc:
            raise ToolError(f"Error executing tool {self.name}: {exc}") from exc
        except ToolError as exc:
            message = _explain(exc)
            if message is None:
                raise
            raise ToolError(f"Error executing tool {self.name}: {message}") from exc.__cause__


def _asgi_scope(context: Context[Any, Any]) -> dict[str, Any] | None:
    """The ASGI scope of the HTTP request behind a tool call, or None (stdio)."""
    try:
        request = context.request_context.request
    except ValueError:  # no request: called outside one
        return None
    scope = getattr(request, "scope", None)
    return scope if isinstance(scope, dict) else None


def _explain(exc: ToolError) -> str | None:
    """The one line a client should read for ``exc``, or None to let the SDK report it."""
    cause = exc.__cause__
    if type(exc) is ToolError and isinstance(cause, ValidationError):
        return "invalid arguments: " + "; ".join(_describe(e) for e in cause.errors())
    if isinstance(cause, ContextFSError):
        return " ".join(str(cause).split()) or type(cause).__name__
    if isinstance(cause, OSError):
        where = f": {cause.filename!s}" if cause.filename else ""
        return f"{cause.strerror or cause}{where}"
    return None


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "arguments"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown {'argument' if len(error['loc']) == 1 else 'field'}"
    if error["type"] == "missing":
        return f"{where}: required"
    return f"{where}: {error['msg']} (got {_shown.repr(error['input'])})"


def build_server(repo: Repository, writer: SessionWriter) -> MCPServer:
    """The MCP server for ``repo``; its writes go through ``writer``'s session as its actor."""
    memory = MemoryTools(repo, writer)
    history = HistoryTools(repo, writer)
    server: MCPServer = MCPServer(
        SERVER_NAME,
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=[_tool(fn, hints, repo) for fn, hints in _specs(memory, history)],
        log_level="WARNING",
    )
    _add_resources(server, repo)
    return server


def _specs(memory: MemoryTools, history: HistoryTools) -> list[ToolSpec]:
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    adds = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    edits = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)
    return [
        (memory.remember, adds),
        (memory.commit, adds),
        (memory.recall, reads),
        (memory.context, reads),
        (memory.session, reads),
        (memory.forget, edits),
        (history.history, reads),
        (history.diff, reads),
        (history.branch, edits),
        (history.switch, edits),
        (history.merge, adds),
        (history.revert, edits),
        (history.verify, reads),
        (history.prove, reads),
    ]


def _tool(fn: Callable[..., Any], hints: ToolAnnotations, repo: Repository) -> Tool:
    """Register ``fn`` as a tool whose arguments refuse unknown names and conversions."""
    tool = ContextFSTool.from_function(fn, description=inspect.getdoc(fn), annotations=hints)
    assert isinstance(tool, ContextFSTool)
    tool._repo = repo
    base = tool.fn_metadata.arg_model
    strict: type[ArgModelBase] = types.new_class(
        base.__name__,
        (base,),
        {},
        lambda namespace: namespace.update(
            model_config=ConfigDict(extra="forbid", strict=True), __module__=__name__
        ),
    )
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True)
    return tool


def _add_resources(server: MCPServer, repo: Repository) -> None:
    @server.resource(
        CONTEXT_URI,
        name="context",
        title="Current context",
        description=f"The best prompt HEAD gives within {DEFAULT_CONTEXT_BUDGET:,} tokens.",
        mime_type="text/plain",
    )
    def current_context() -> str:
        with _resource_errors():
            if repo.head() is None:
                return ""  # a branch without commits yet: an empty memory
            return repo.context(budget=DEFAULT_CONTEXT_BUDGET).text

    @server.resource(
        ATOM_URI,
        name="atom",
        title="A memory by id",
        description="One memory (full id or unique prefix) as JSON: as HEAD holds it, with"
        " its entry fields, or as stored when HEAD no longer does (in_head false).",
        mime_type="application/json",
    )
    def atom(id: str) -> str:
        with _resource_errors():
            return json.dumps(_atom_json(repo, id), ensure_ascii=False)


def _atom_json(repo: Repository, ref: str) -> dict[str, Any]:
    try:
        memory = repo.get(ref, "HEAD")
    except RevisionError:
        key = repo.memory_id(ref)
        stored = repo.store.get_object(from_hex(key))
        if stored is None or stored.kind != ATOM:
            raise
        type_sig, content = decode_atom(stored.data)
        return {"id": key, "type": str(type_sig), "content": content, "in_head": False}
    if isinstance(memory, MemoryAtom):
        return {**memory_out(memory).model_dump(), "in_head": True}
    return {
        "id": memory.molecule_hash,
        "kind": "molecule",
        "type": str(memory.molecule_type),
        "atoms": [a.content_hash for a in memory.atoms],
        "in_head": True,
    }


@contextlib.contextmanager
def _resource_errors() -> Iterator[None]:
    """Turn library errors into resource errors: an unknown id is "not found"."""
    try:
        yield
    except RevisionError as exc:
        raise ResourceNotFoundError(" ".join(str(exc).split())) from exc
    except ContextFSError as exc:
        raise ResourceError(" ".join(str(exc).split())) from exc


__all__ = ["ATOM_URI", "CONTEXT_URI", "SERVER_NAME", "ContextFSTool", "build_server"]
