"""Integrity: RFC 6962 Merkle trees over ContextFS objects."""
