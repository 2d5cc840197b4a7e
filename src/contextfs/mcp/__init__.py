"""ContextFS as a Model Context Protocol server: tools and resources for AI clients.

Needs the ``mcp`` extra (``pip install 'contextfs-vcs[mcp]'``); the rest of
ContextFS never imports this package. ``contextfs mcp`` runs it over stdio or
streamable HTTP (:mod:`contextfs.cli.mcp`). Modules:

* :mod:`.shapes`: the typed arguments and structured results;
* :mod:`.writer`: writes as op-log ops of one session, crystallised into commits;
* :mod:`.tools` and :mod:`.history`: the tools, thin calls into the Repository;
* :mod:`.server`: the MCPServer, its error handling and resources;
* :mod:`.http`: streamable HTTP behind a bearer token.
"""

from .server import build_server as build_server
from .writer import SessionWriter as SessionWriter

__all__ = ["SessionWriter", "build_server"]
