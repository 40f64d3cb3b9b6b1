"""``python -m pinbridge``: the same as the ``pinbridge`` command."""

from __future__ import annotations

from pinbridge.cli import main

main()
