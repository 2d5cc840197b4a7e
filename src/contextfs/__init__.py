"""ContextFS: version control for what an AI agent knows."""
