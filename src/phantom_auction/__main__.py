"""``python -m phantom_auction``: the ``phantom-auction`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
