"""``python -m phantom_auction.cli``: the ``phantom-auction`` command."""

from __future__ import annotations

from . import main

if __name__ == "__main__":
    main()
