"""``pinbridge import``: offline conversions from a file, through the accept path.

Rows are read in chunks, turned into offline input events (:mod:`pinbridge.offline`) and
accepted like any other event, in the same store: ``pinbridge run`` (or a worker) delivers
them. Every row gets a line in the report, in the file's order: accepted, duplicate (already
imported), dropped, ignored or rejected, with the reasons. A bad row never stops the import.
A reason names the file's column and the field it was read as (``Total (value): must be a
number``), never the internal event field it became (``properties.revenue``), and never the
value.
A file that is not UTF-8 is refused whole, before any row is read (:func:`count_rows`).

Re-importing the same rows sends nothing twice: their event ids are stable (the file's event
id, else the order id, else a digest of the row), and imports deduplicate over 8 days, longer
than the 7 days after which Pinterest refuses a conversion anyway.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TextIO

import msgspec

from pinbridge.accept import Acceptor, ItemResult
from pinbridge.mapping import name_key
from pinbridge.metrics import Metrics
from pinbridge.offline import FIELDS, ColumnMap, Row, missing_time, read_rows, row_to_message

__all__ = ["IMPORT_DEDUP_WINDOW", "ImportSummary", "NotUtf8Error", "count_rows", "import_rows"]

#: Dedup window of imports: longer than Pinterest's 7-day limit on event age.
IMPORT_DEDUP_WINDOW: Final = 8 * 86400.0
CHUNK: Final = 500
#: Rejected rows an :class:`ImportSummary` lists (the report has them all).
LISTED_REJECTIONS: Final = 10
#: Where a row's field ends up in the input event or the Pinterest event (indexes removed),
#: so that a reason about it can name the column it came from.
_FIELD_OF_PATH: Final[Mapping[str, str]] = {
    # the warnings of identifiers left out (an email that is not one) name user_data fields
    "user_data.em": "email",
    "user_data.ph": "phone",
    "user_data.fn": "first_name",
    "user_data.ln": "last_name",
    "user_data.ge": "gender",
    "user_data.db": "birthday",
    "user_data.ct": "city",
    "user_data.st": "state",
    "user_data.zp": "zip",
    "user_data.country": "country",
    "user_data.external_id": "user_id",
    "event": "event",
    "event_name": "event",
    "messageId": "event_id",
    "event_id": "event_id",
    "timestamp": "time",
    "event_time": "time",
    "userId": "user_id",
    "context.traits.email": "email",
    "context.traits.phone": "phone",
    "context.traits.gender": "gender",
    "context.traits.birthday": "birthday",
    "context.traits.firstName": "first_name",
    "context.traits.lastName": "last_name",
    "context.traits.address.city": "city",
    "context.traits.address.state": "state",
    "context.traits.address.postalCode": "zip",
    "context.traits.address.country": "country",
    "properties.revenue": "value",
    "custom_data.value": "value",
    "properties.currency": "currency",
    "custom_data.currency": "currency",
    "properties.order_id": "order_id",
    "custom_data.order_id": "order_id",
    "properties.epik": "click_id",
    "properties.products": "product_ids",
    "custom_data.content_ids": "product_ids",
    "properties.products.quantity": "quantity",
    "custom_data.num_items": "quantity",
}
_INDEX = re.compile(r"\[\d+\]")
_IGNORED: Final = (
    "event: not sent (the event name maps to no Pinterest event, or no destination takes it)"
)


class ImportSummary(msgspec.Struct):
    """What an import did; ``rejections`` lists the first rejected rows (row number, reasons),
    up to :data:`LISTED_REJECTIONS`."""

    rows: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    dropped: int = 0
    ignored: int = 0
    rejections: list[tuple[int, str]] = msgspec.field(default_factory=list)


async def import_rows(
    stream: TextIO,
    *,
    file_format: str,
    columns: ColumnMap,
    acceptor: Acceptor,
    report: TextIO,
    now: Callable[[], float],
    default_event: str = "Order Completed",
    progress: Callable[[int], None] = lambda n: None,
) -> ImportSummary:
    """Import every row of ``stream``; write one report line per row; return the counts.

    The report has the columns ``row``, ``status``, ``event_ids`` and ``reasons``, one line
    per row in the file's order, whether the row was refused here (unreadable, a ``--map``
    column not in the header, no time, a value that is not an amount) or by the accept path.
    Rows refused here are counted like the accept path's rejections: in the summary, and in
    the acceptor's metrics and per-minute tally (``accept_counts`` once drained into the
    store), as outcome ``rejected`` without an event name.
    """
    summary = ImportSummary()
    writer = csv.writer(report)
    writer.writerow(["row", "status", "event_ids", "reasons"])
    header = file_format == "csv"
    for chunk in _chunks(read_rows(stream, file_format), CHUNK):
        at = now()
        lines: list[list[str]] = []  # one per row of the chunk, in file order
        messages: list[dict[str, Any]] = []
        owners: list[tuple[list[str], Mapping[str, str]]] = []
        for row in chunk:
            line = [str(row.number), "rejected", "", ""]
            lines.append(line)
            fields: Mapping[str, str] = {}
            try:
                fields = _fields(row, columns, header=header)
                message = _row_message(row, fields, default_event=default_event)
            except ValueError as exc:
                line[3] = _relabel(str(exc), fields)
                continue
            messages.append(message)
            owners.append((line, fields))
        _count_rejected(acceptor.metrics, at, len(chunk) - len(messages))
        if messages:
            results = await acceptor.accept(messages, now=at, default_source="offline")
            for (line, fields), result in zip(owners, results, strict=True):
                line[1:] = [result.status, " ".join(result.event_ids), _why(result, fields)]
        for line in lines:
            _count(summary, line[1])
            if line[1] == "rejected" and len(summary.rejections) < LISTED_REJECTIONS:
                summary.rejections.append((int(line[0]), line[3]))
        writer.writerows(lines)
        summary.rows += len(chunk)
        progress(len(chunk))
    return summary


def _fields(row: Row, columns: ColumnMap, *, header: bool) -> Mapping[str, str]:
    """field → column for this row (``{}`` for a row that could not be read).

    Raises:
        ValueError: a column named by ``--map`` is not in the file's header.
    """
    return {} if row.error else columns.resolve(list(row.columns), header=header)


def _row_message(row: Row, fields: Mapping[str, str], *, default_event: str) -> dict[str, Any]:
    """The row's input event.

    Raises:
        ValueError: why the row cannot be one (naming the field, never the value).
    """
    if row.error:
        raise ValueError(row.error)
    if missing_time(row.columns, fields):
        raise ValueError("time: an offline conversion needs the time it happened")
    return row_to_message(row.columns, fields, default_event=default_event)


def _count_rejected(metrics: Metrics, now: float, count: int) -> None:
    """Count rows refused before the accept path as it counts an input it rejects (outcome
    ``rejected``, no reason, no event name), so that totals add up to the rows."""
    if count:
        metrics.events.labels("rejected").inc(count)
        metrics.received.labels("").inc(count)
        metrics.outcomes.labels("rejected", "", "", "").inc(count)
        metrics.tally.add(now, "rejected", "", "", count)


def _why(result: ItemResult, fields: Mapping[str, str]) -> str:
    if result.status == "dropped":
        return result.reason
    if result.status == "ignored":
        # Not the accept path's warning: it quotes the event name, and a shifted CSV line can
        # put personal data in that column.
        return _IGNORED
    problems = list(result.errors)
    if any(p.field == "user_data" for p in problems):
        # Why no identifier was left: the values of the row that were not usable.
        problems += [w for w in result.warnings if w.field.startswith("user_data.")]
    return "; ".join(f"{_label(p.field, fields)}: {p.message}" for p in problems)


def _label(path: str, fields: Mapping[str, str]) -> str:
    """How a reason names what it is about: the column a row's field came from, followed by
    the field when the column's name differs (``Total (value)``); a path that no field
    feeds (``user_data``) is left as it is."""
    field = path if path in FIELDS else None
    key = _INDEX.sub("", path)
    while field is None and key:
        field = _FIELD_OF_PATH.get(key)
        key = key.rpartition(".")[0]
    if field is None:
        return path
    column = fields.get(field)
    if column is None or name_key(column) == name_key(field):
        return column or field
    return f"{column} ({field})"


def _relabel(reason: str, fields: Mapping[str, str]) -> str:
    """A reason of this module or of :mod:`pinbridge.offline` (``value: ...``), its field
    named as :func:`_label` names it."""
    head, sep, rest = reason.partition(": ")
    return f"{_label(head, fields)}{sep}{rest}" if sep and head in FIELDS else reason


def _count(summary: ImportSummary, status: str) -> None:
    setattr(summary, status, getattr(summary, status) + 1)


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class NotUtf8Error(ValueError):
    """A file to import is not UTF-8 (nothing of it is imported)."""


def count_rows(path: Path, file_format: str) -> int:
    """Data rows in a file (for the progress bar), after checking that all of it is UTF-8.

    A file that is not UTF-8 is refused whole, before any row is imported: decoding it some
    other way would hash wrong names and cities, and rejecting only the rows with a stray byte
    would leave the file half imported.

    Raises:
        NotUtf8Error: a line is not UTF-8; the message names the line, never its content.
    """
    lines = 0
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise NotUtf8Error(
                    f"{path.name}: line {number} is not UTF-8 (byte {exc.start + 1} of the "
                    "line); save the file as UTF-8 (in Excel: CSV UTF-8) and import it again. "
                    "Nothing was imported."
                ) from None
            lines += bool(line.strip())
    return max(lines - 1, 0) if file_format == "csv" else lines
