"""Product feeds: CSV, TSV and XML read and checked; product ids missing from the catalog."""

from __future__ import annotations

import pytest

from pinbridge.catalog import mismatches, read_feed
from pinbridge.store.base import SentEvent

HEADER = "id,title,description,link,image_link,price,availability\n"
GOOD = "sku-1,Mug,A mug,https://shop.example/p/1,https://shop.example/i/1.jpg,9.99 USD,in stock\n"


class TestFeeds:
    def test_good_csv(self, tmp_path):
        """A complete row is kept with its id, price and availability."""
        path = tmp_path / "feed.csv"
        path.write_text(HEADER + GOOD)
        report = read_feed(path)
        assert report.problems == []
        assert [p.id for p in report.products] == ["sku-1"]

    @pytest.mark.parametrize(
        ("row", "field", "why"),
        [
            (",Mug,A mug,https://s.x/p,https://s.x/i,9.99 USD,in stock", "id", "missing"),
            ("s2,Mug,A mug,shop/p,https://s.x/i,9.99 USD,in stock", "link", "URL"),
            ("s3,Mug,A mug,https://s.x/p,https://s.x/i,9.99,in stock", "price", "49.99 USD"),
            ("s4,Mug,A mug,https://s.x/p,https://s.x/i,9.99 USD,maybe", "availability", "one of"),
            ("s5,,A mug,https://s.x/p,https://s.x/i,9.99 USD,in stock", "title", "missing"),
            ("sku-1,Mug,A mug,https://s.x/p,https://s.x/i,1 USD,in stock", "id", "repeats"),
        ],
    )  # fmt: skip
    def test_bad_rows_name_field_and_reason(self, tmp_path, row, field, why):
        """Each bad row is reported with the field and why, and skipped."""
        path = tmp_path / "feed.csv"
        path.write_text(HEADER + GOOD + row + "\n")
        report = read_feed(path)
        assert len(report.products) == 1
        assert [(p.row, p.field) for p in report.problems] == [(2, field)]
        assert why in report.problems[0].message

    def test_tsv(self, tmp_path):
        """Tab-separated feeds are read by their extension."""
        path = tmp_path / "feed.tsv"
        path.write_text(HEADER.replace(",", "\t") + GOOD.replace(",", "\t"))
        assert [p.id for p in read_feed(path).products] == ["sku-1"]

    def test_rss_with_google_namespace(self, tmp_path):
        """RSS items with g: fields are read like columns."""
        path = tmp_path / "feed.xml"
        path.write_text(
            '<?xml version="1.0"?><rss xmlns:g="http://base.google.com/ns/1.0"><channel><item>'
            "<g:id>sku-7</g:id><title>Mug</title><description>A mug</description>"
            "<link>https://shop.example/p/7</link><g:image_link>https://shop.example/i.jpg"
            "</g:image_link><g:price>12.00 EUR</g:price><g:availability>out of stock"
            "</g:availability></item></channel></rss>"
        )
        assert [p.id for p in read_feed(path).products] == ["sku-7"]

    def test_header_without_required_column(self, tmp_path):
        """A feed lacking a required column is refused as a whole."""
        path = tmp_path / "feed.csv"
        path.write_text("id,title\nsku-1,Mug\n")
        with pytest.raises(ValueError, match="description"):
            read_feed(path)


class TestMismatches:
    def test_unknown_ids_per_event_name(self):
        """The share of delivered product ids the catalog lacks, with examples."""
        event = SentEvent(1, "d", "checkout", 0, 0.0, "delivered", 1.0, 200, b"")
        payload = {"custom_data": {"content_ids": ["sku-1", "sku-9"]}}
        queued = SentEvent(2, "d", "checkout", 0, 0.0, "queued", None, None, b"")
        [row] = mismatches([(event, payload), (queued, payload)], {"sku-1"})
        assert (row.event_name, row.product_ids, row.unknown, row.examples) == (
            "checkout",
            2,
            1,
            ["sku-9"],
        )
