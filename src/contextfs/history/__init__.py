"""History: snapshot trees, commits, revisions, diff and merge."""
