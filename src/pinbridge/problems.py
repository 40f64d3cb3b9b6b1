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


def problem_from_validation(exc: Exception, prefix: str) -> Problem:
    """Turn a msgspec validation error into a Problem naming the field by its dotted path.

    msgspec says ``Expected `int`, got `str` - at `$.contents[0].quantity```; we say
    ``Problem("custom_data.contents[0].quantity", "expected int, got str")``.
    """
    message, _, where = str(exc).partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    unknown = message.partition("unknown field `")[2].rstrip("`")
    if unknown:
        path = f"{path}.{unknown}" if path else unknown
        message = "is not allowed here"
    field = ".".join(p for p in (prefix, path) if p).replace(".[", "[")
    return Problem(
        field or prefix,
        message.replace("`", "").strip()[:1].lower() + message.replace("`", "").strip()[1:],
    )
