"""``import_rows``: one report line per row in the file's order, every row counted once."""

from __future__ import annotations

import asyncio
import csv
import io
import time

import pytest

from pinbridge.config import Settings
from pinbridge.importer import IMPORT_DEDUP_WINDOW, ImportSummary, import_rows
from pinbridge.offline import ColumnMap
from pinbridge.service import build_acceptor
from pinbridge.store import MemoryStore
from pinbridge.transform import TransformOptions

NOW = time.time()
WHEN = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 60))
HEADER = "Order ID,Email,Total,Currency,Purchased,Event\n"
GOOD = f"o{{n}},p{{n}}@example.com,5,USD,{WHEN},\n"
NO_TIME = "o{n},p{n}@example.com,5,USD,,\n"  # refused before the accept step
BAD_VALUE = f"o{{n}},p{{n}}@example.com,lots,USD,{WHEN},\n"  # refused by the accept step
UNMAPPED = f"o{{n}},p{{n}}@example.com,5,USD,{WHEN},Weird Thing\n"  # ignored (unmapped=drop)
MONEY = f'o{{n}},p{{n}}@example.com,"$1,234.50",USD,{WHEN},\n'
MONEY_EUR = f"o{{n}},p{{n}}@example.com,1.234 €,,{WHEN},\n"  # ambiguous: refused
MONEY_CONFLICT = f"o{{n}},p{{n}}@example.com,€12,USD,{WHEN},\n"  # € against USD: refused


def run_import(kinds: list[str]) -> tuple[ImportSummary, list[dict[str, str]], dict[str, int]]:
    """Import one row per kind; return the summary, the report and the tallied outcomes."""
    text = HEADER + "".join(kind.format(n=n) for n, kind in enumerate(kinds, start=1))
    settings = Settings(transform=TransformOptions(unmapped="drop"))
    acceptor = build_acceptor(settings, MemoryStore(), dedup_window=IMPORT_DEDUP_WINDOW)
    report = io.StringIO()
    summary = asyncio.run(
        import_rows(
            io.StringIO(text),
            file_format="csv",
            columns=ColumnMap({"time": "Purchased"}),
            acceptor=acceptor,
            report=report,
            now=lambda: NOW,
        )
    )
    tallied: dict[str, int] = {}
    for count in acceptor.metrics.tally.drain():
        tallied[count.outcome] = tallied.get(count.outcome, 0) + count.count
    return summary, list(csv.DictReader(io.StringIO(report.getvalue()))), tallied


class TestReport:
    @pytest.mark.parametrize(
        ("kinds", "statuses"),
        [
            ([GOOD, NO_TIME, GOOD], ["accepted", "rejected", "accepted"]),
            ([GOOD, GOOD, NO_TIME], ["accepted", "accepted", "rejected"]),
            ([BAD_VALUE, NO_TIME, GOOD], ["rejected", "rejected", "accepted"]),
            ([UNMAPPED, GOOD, NO_TIME, BAD_VALUE], ["ignored", "accepted", "rejected", "rejected"]),
        ],
    )  # fmt: skip
    def test_rows_in_file_order(self, kinds, statuses):
        """Rows refused before the accept step keep their place among the chunk's rows."""
        _, report, _ = run_import(kinds)
        assert [r["row"] for r in report] == [str(n) for n in range(1, len(kinds) + 1)]
        assert [r["status"] for r in report] == statuses

    def test_an_ignored_row_says_why_without_its_value(self):
        """An ignored row's line names the cause, not the event name (which a shifted line
        could fill with personal data)."""
        _, [line], _ = run_import([UNMAPPED.replace("Weird Thing", "jane@example.com")])
        assert line["status"] == "ignored"
        assert line["reasons"].startswith("event: not sent")
        assert "jane" not in line["reasons"]


class TestMoney:
    @pytest.mark.parametrize(
        ("kinds", "report"),
        [
            ([MONEY], [("accepted", "")]),
            ([MONEY_CONFLICT, MONEY], [("rejected", "Total (value): its currency € (EUR) differs"),
                                       ("accepted", "")]),
            ([GOOD, MONEY_EUR], [("accepted", ""), ("rejected", "Total (value): one ',' or '.'")]),
        ],
    )  # fmt: skip
    def test_offline_money_formats(self, kinds, report):
        """``$1,234.50`` is imported; an ambiguous or conflicting amount names ``value``."""
        _, lines, _ = run_import(kinds)
        pairs = zip(lines, report, strict=True)
        assert [(line["status"], line["reasons"][: len(why)]) for line, (_, why) in pairs] == report


class TestCounts:
    @pytest.mark.parametrize(
        "kinds",
        [
            [NO_TIME],
            [GOOD, NO_TIME, BAD_VALUE, UNMAPPED, NO_TIME],
            [NO_TIME, NO_TIME, GOOD],
        ],
    )
    def test_every_row_counted_once_in_summary_and_tally(self, kinds):
        """Summary and accept_counts tally agree per outcome and add up to the rows."""
        summary, report, tallied = run_import(kinds)
        by_status: dict[str, int] = {}
        for line in report:
            by_status[line["status"]] = by_status.get(line["status"], 0) + 1
        from_summary = {
            status: getattr(summary, status)
            for status in ("accepted", "duplicate", "rejected", "dropped", "ignored")
            if getattr(summary, status)
        }
        assert from_summary == by_status == tallied
        assert sum(tallied.values()) == summary.rows == len(kinds)
