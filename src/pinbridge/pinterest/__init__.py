"""Pinterest's side: the wire format, the delivery client and the local emulator.

This layer imports nothing else of pinbridge.
"""

from __future__ import annotations
