"""Memories in and out of foreign formats: rules files, mem0 exports, LangGraph stores.

Each reader turns its format into :class:`ImportedMemory` values (pure, no
I/O); :func:`import_atoms` makes a repository hold exactly what a source holds,
in one commit; :func:`export_markdown` writes a revision back as a rules file.
"""

from .export import MarkdownExport as MarkdownExport
from .export import export_markdown as export_markdown
from .langgraph import read_store as read_langgraph_store
from .markdown import parse_markdown as parse_markdown
from .mem0 import parse_mem0 as parse_mem0
from .records import ImportedMemory as ImportedMemory
from .records import ImportFileError as ImportFileError
from .sync import ImportResult as ImportResult
from .sync import file_source as file_source
from .sync import import_atoms as import_atoms
from .sync import import_memories as import_memories
from .sync import to_atoms as to_atoms

__all__ = [
    "ImportFileError",
    "ImportResult",
    "ImportedMemory",
    "MarkdownExport",
    "export_markdown",
    "file_source",
    "import_atoms",
    "import_memories",
    "parse_markdown",
    "parse_mem0",
    "read_langgraph_store",
    "to_atoms",
]
