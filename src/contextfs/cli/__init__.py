"""The ``contextfs`` command line: a thin adapter from argv to ``Repository`` calls."""
