"""``contextfs ui``: a local web view of a repository's history, diffs, context and proofs.

Needs the ``ui`` extra (Starlette, Jinja2, uvicorn). Pages are server-rendered
HTML from the library API, with a small script for progressive enhancement;
every asset ships inside the package, so it works offline.
"""
