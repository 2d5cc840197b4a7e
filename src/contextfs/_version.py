"""The one place the version is written: the build reads it, ``--version`` prints it."""

__version__ = "0.1.0"
