"""Field-level problems: the errors and warnings every layer reports the same way.

A problem names the field by its dotted path in the *output* where one exists
(``user_data.ph``, ``custom_data.value``, ``event_time``) and otherwise in the input
(``properties.revenue``), and says in plain words what is wrong.
"""

from __future__ import annotations

import msgspec

__all__ = ["Problem"]


class Problem(msgspec.Struct, frozen=True):
    """One error or warning about one field."""

    field: str
    message: str
