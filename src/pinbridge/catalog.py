"""Pinterest product feeds: read and check a catalog, and find product ids it lacks.

A feed is CSV, TSV or XML (RSS 2.0 ``<item>`` or Atom ``<entry>``, fields with or without the
``g:`` namespace) with Pinterest's required fields (REFERENCE.md §11.4): ``id``, ``title``,
``description``, ``link``, ``image_link``, ``price`` (``49.99 USD``) and ``availability``
(``in stock``, ``out of stock``, ``preorder``; Pinterest also takes ``backorder``). Every bad
row is reported with its field and why; good rows are kept. The feed's ``id`` must equal the
``product_id`` events carry (``content_ids``, ``contents[].id``), or shopping campaigns
cannot use them: :func:`mismatches` measures that.

Replacing the kept catalog is guarded (:func:`check_replacement`): a feed with no good product
(a failed export with only a header, or every row bad) never replaces a non-empty catalog unless
the operator says so, and a feed much smaller than the catalog it replaces is warned about.

XML is parsed with the standard library's expat, which refuses external entities and, from
expat 2.4.1, entity-expansion bombs; a feed is the operator's own file.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from pinbridge.quality import product_ids
from pinbridge.store.base import CatalogProduct, SentEvent

__all__ = [
    "REQUIRED_FIELDS",
    "SHRINK_WARNING_SHARE",
    "CatalogMismatch",
    "EmptyFeedError",
    "FeedProblem",
    "FeedReport",
    "check_replacement",
    "mismatches",
    "read_feed",
]

REQUIRED_FIELDS: Final = (
    "id",
    "title",
    "description",
    "link",
    "image_link",
    "price",
    "availability",
)
AVAILABILITY: Final = frozenset({"in stock", "out of stock", "preorder", "backorder"})
MAX_ID_LENGTH: Final = 127
MAX_TITLE_LENGTH: Final = 500
MAX_DESCRIPTION_LENGTH: Final = 10_000
#: A replacing feed with fewer good products than this share of the kept catalog is warned
#: about (not refused: shrinking a catalog is also a normal clean-up).
SHRINK_WARNING_SHARE: Final = 0.5
_PRICE = re.compile(r"^\s*(\d+(?:\.\d{1,2})?)\s+([A-Z]{3})\s*$")
_URL = re.compile(r"^https?://[^\s/?#]+\.[^\s]*$", re.IGNORECASE)
_EXAMPLES: Final = 5
#: A line appended to a CSV/TSV feed to detect a quote left open (a private-use character).
_GOOGLE_NAMESPACE: Final = "{http://base.google.com/"
_END: Final = "\ue000pinbridge-end-of-feed"


class FeedProblem(msgspec.Struct, frozen=True):
    """A bad row: its number (1 = first data row), id when it has one, field, and why."""

    row: int
    id: str
    field: str
    message: str


class FeedReport(msgspec.Struct):
    """What a feed held: the good products and the problems of the bad rows."""

    rows: int = 0
    products: list[CatalogProduct] = []
    problems: list[FeedProblem] = []

    @property
    def bad_rows(self) -> int:
        return len({p.row for p in self.problems})


class EmptyFeedError(ValueError):
    """A feed without a good product would replace a non-empty catalog (refused)."""


def check_replacement(current: int, new: int, *, allow_empty: bool = False) -> str | None:
    """Judge replacing a kept catalog of ``current`` products with a feed of ``new`` good ones.

    An empty feed is most often a failed export (a header and no rows) or a feed whose every
    row is bad; replacing the catalog with it would make every delivered product id look
    missing. So ``new == 0 < current`` is refused unless ``allow_empty``. A feed with fewer
    than ``SHRINK_WARNING_SHARE * current`` products (a truncated export, or a real
    clean-up) is kept but warned about.

    Returns:
        A warning to show, or ``None``.

    Raises:
        EmptyFeedError: ``new`` is 0, ``current`` is not, and ``allow_empty`` is false.
    """
    if new == 0 and current > 0:
        if not allow_empty:
            raise EmptyFeedError(
                f"the feed has no good product; it would replace the {current:,} kept products "
                "with none (a failed export?). Nothing was changed; pass --allow-empty to "
                "empty the catalog on purpose"
            )
        return f"the catalog of {current:,} products is emptied (--allow-empty)"
    if new < current * SHRINK_WARNING_SHARE:
        return (
            f"the feed has {new:,} good products, under {SHRINK_WARNING_SHARE:.0%} of the "
            f"{current:,} kept; check that the export is complete"
        )
    return None


class CatalogMismatch(msgspec.Struct):
    """Product ids of one event name's delivered events that the catalog lacks."""

    event_name: str
    events: int
    product_ids: int
    unknown: int
    share_unknown: float
    examples: list[str]


def read_feed(path: Path, *, feed_format: str | None = None) -> FeedReport:
    """Read and check a feed file (format from the extension unless given).

    Raises:
        ValueError: the file cannot be read as that format at all.
    """
    fmt = feed_format or _format_of(path)
    raw = path.read_bytes()
    if fmt == "xml":
        rows: Iterable[dict[str, str]] = _xml_rows(raw)
    else:
        text = raw.decode("utf-8-sig")
        rows = _delimited_rows(text, "\t" if fmt == "tsv" else _sniff(text))
    return check_rows(rows)


def check_rows(rows: Iterable[Mapping[str, str]]) -> FeedReport:
    """Check each row; keep the good ones (the first row of a repeated id wins)."""
    report = FeedReport()
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        report.rows += 1
        problems = list(_check(number, row))
        product_id = (row.get("id") or "").strip()
        if product_id and product_id in seen:
            problems.append(FeedProblem(number, product_id, "id", "repeats an earlier row's id"))
        if problems:
            report.problems.extend(problems)
            continue
        seen.add(product_id)
        report.products.append(
            CatalogProduct(
                product_id,
                title=row["title"].strip(),
                price=row["price"].strip(),
                availability=row["availability"].strip().lower(),
            )
        )
    return report


def _check(number: int, row: Mapping[str, str]) -> Iterator[FeedProblem]:
    product_id = (row.get("id") or "").strip()
    for field in REQUIRED_FIELDS:
        if not (row.get(field) or "").strip():
            yield FeedProblem(number, product_id, field, "missing (required by Pinterest)")
    if len(product_id) > MAX_ID_LENGTH:
        yield FeedProblem(number, product_id, "id", f"longer than {MAX_ID_LENGTH} characters")
    title = (row.get("title") or "").strip()
    if len(title) > MAX_TITLE_LENGTH:
        yield FeedProblem(number, product_id, "title", f"longer than {MAX_TITLE_LENGTH} characters")
    if len((row.get("description") or "").strip()) > MAX_DESCRIPTION_LENGTH:
        yield FeedProblem(
            number, product_id, "description", f"longer than {MAX_DESCRIPTION_LENGTH} characters"
        )
    for field in ("link", "image_link"):
        value = (row.get(field) or "").strip()
        if value and not _URL.match(value):
            yield FeedProblem(number, product_id, field, f"not an http(s) URL: {value[:80]!r}")
    price = (row.get("price") or "").strip()
    if price and not _PRICE.match(price):
        yield FeedProblem(
            number,
            product_id,
            "price",
            f"{price[:40]!r} is not like '49.99 USD' (amount, ISO code)",
        )
    availability = (row.get("availability") or "").strip().lower().replace("_", " ")
    if availability and availability not in AVAILABILITY:
        yield FeedProblem(
            number,
            product_id,
            "availability",
            f"{availability!r} is not one of: {', '.join(sorted(AVAILABILITY))}",
        )


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".xml", ".rss", ".atom"):
        return "xml"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix == ".txt":
        return "tsv"
    return "csv"


def _sniff(text: str) -> str:
    header = text.split("\n", 1)[0]
    return "\t" if header.count("\t") > header.count(",") else ","


def _delimited_rows(text: str, delimiter: str) -> Iterator[dict[str, str]]:
    """Rows of a CSV or TSV feed, keyed by field name without ``g:``.

    Tab-separated feeds have no quoting (Google Merchant TSV): a ``"`` is an ordinary
    character there, so every line is one row. In CSV a quote that never closes would take the
    rest of the file as one field; a sentinel line appended after the text detects that (it ends
    up inside a field), and the whole file is refused naming the row where the quote opened.
    csv's field size limit is raised to the file's length while reading, so that an over-long
    field gets its row's "longer than" problem instead of a csv error.

    Raises:
        ValueError: empty feed, header lacking a required column, or a quote never closed.
    """
    stream = io.StringIO(f"{text}\r\n{_END}\r\n", newline="")
    reader = csv.DictReader(
        stream,
        delimiter=delimiter,
        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL,
    )
    previous_limit = csv.field_size_limit(max(csv.field_size_limit(), len(text) + len(_END) + 4))
    try:
        yield from _named_rows(reader)
    finally:
        csv.field_size_limit(previous_limit)


def _named_rows(reader: csv.DictReader[str]) -> Iterator[dict[str, str]]:
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        raise ValueError(f"the header cannot be read: {exc}") from exc
    if not fieldnames or fieldnames == [_END]:
        raise ValueError("the feed is empty")
    missing = [f for f in REQUIRED_FIELDS if f not in {_field(n) for n in fieldnames}]
    if missing:
        raise ValueError(f"the header lacks required column(s): {', '.join(missing)}")
    for number in itertools.count(1):
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValueError(f"row {number} (line {line}): {exc}") from exc
        rest = row.get(None)
        values = [v for v in row.values() if isinstance(v, str)]
        values += [v for v in rest if isinstance(v, str)] if isinstance(rest, list) else []
        if values[:1] == [_END]:
            return
        if any(_END in v for v in values):
            raise ValueError(
                f'row {number} (line {line}): a quote (") opens a field and never closes, so '
                "the rest of the file would be one field; close or double the quote"
            )
        yield {_field(k): (v or "") for k, v in row.items() if k is not None and isinstance(v, str)}


def _field(name: str) -> str:
    return name.strip().lower().removeprefix("g:")


def _xml_rows(raw: bytes) -> Iterator[dict[str, str]]:
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc
    items = [e for e in root.iter() if _local(e.tag) in ("item", "entry")]
    if not items:
        raise ValueError("no <item> or <entry> elements in the XML feed")
    for item in items:
        plain: dict[str, str] = {}
        google: dict[str, str] = {}
        for child in item:
            fields = google if child.tag.startswith(_GOOGLE_NAMESPACE) else plain
            value: Any = child.text or child.get("href") or ""
            fields.setdefault(_local(child.tag), str(value).strip())
        # A g: field is the product's own; Atom's <id>, <title> are about the entry.
        yield plain | google


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def mismatches(
    events: Sequence[tuple[SentEvent, Mapping[str, Any]]], known: set[str]
) -> list[CatalogMismatch]:
    """Per event name, delivered product ids not in ``known`` (the catalog's ids)."""
    groups: dict[str, tuple[int, list[str]]] = {}
    for event, payload in events:
        if event.state != "delivered":
            continue
        ids = product_ids(payload)
        if not ids:
            continue
        count, found = groups.get(event.event_name, (0, []))
        groups[event.event_name] = (count + 1, found + ids)
    rows = []
    for name, (count, ids) in sorted(groups.items()):
        unknown = [i for i in ids if i not in known]
        rows.append(
            CatalogMismatch(
                name,
                count,
                len(ids),
                len(unknown),
                len(unknown) / len(ids),
                list(dict.fromkeys(unknown))[:_EXAMPLES],
            )
        )
    return rows


def all_product_ids(events: Iterable[tuple[SentEvent, Mapping[str, Any]]]) -> list[str]:
    """Every product id of delivered events (to ask the store which it knows)."""
    ids: dict[str, None] = {}
    for event, payload in events:
        if event.state == "delivered":
            ids.update(dict.fromkeys(product_ids(payload)))
    return list(ids)
