"""ContextFS inside the agent frameworks people already use (each behind its own extra)."""
