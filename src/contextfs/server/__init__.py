"""The ContextFS server: protocol v1 over asyncio, one repository (``contextfs serve``)."""

from .serve import Limits as Limits
from .serve import Server as Server

__all__ = ["Limits", "Server"]
