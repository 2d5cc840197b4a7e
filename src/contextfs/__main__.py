"""``python -m contextfs``: the ``contextfs`` command, for when its script is not on PATH."""

from .cli.main import main

if __name__ == "__main__":
    main()
