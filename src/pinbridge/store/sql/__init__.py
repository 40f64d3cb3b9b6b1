"""SQL kept in ``.sql`` files: named queries per dialect, and numbered migrations."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

__all__ = ["load_migrations", "load_queries"]

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """The named queries of ``<dialect>.sql``: ``{"claim": "UPDATE ..."}``."""
    text = files(__package__).joinpath(f"{dialect}.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries = {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
    return queries


def load_migrations(dialect: str) -> list[tuple[int, str]]:
    """Migrations of a dialect as ``(version, sql)``, in order (``0001_initial.sql`` is 1)."""
    folder = files(__package__).joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)
