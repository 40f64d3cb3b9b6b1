"""Product feeds: CSV, TSV and XML read and checked; product ids missing from the catalog."""

from __future__ import annotations

import pytest

from pinbridge.catalog import EmptyFeedError, check_replacement, mismatches, read_feed
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

    @pytest.mark.parametrize(
        ("suffix", "bad_row", "row_number"),
        [
            (".csv", 'sku-4,"Shirt 4 12in wide,Tee,https://s.x/p,https://s.x/i,1 USD,in stock', 4),
            (".csv", '"sku-2,Mug,A mug,https://s.x/p,https://s.x/i,9.99 USD,in stock', 2),
            (".csv", 'sku-6,Mug,"A mug,https://s.x/p,https://s.x/i,9.99 USD,in stock', 6),
        ],
    )  # fmt: skip
    @pytest.mark.parametrize("tail", [0, 20_000])
    def test_unclosed_quote_is_refused_naming_its_row(
        self, tmp_path, suffix, bad_row, row_number, tail
    ):
        """A quote that never closes is one clear error naming the row, in small and big files."""
        rows = [GOOD.replace("sku-1", f"sku-{n}") for n in range(1, 9)]
        rows[row_number - 1] = bad_row + "\n"
        path = tmp_path / f"feed{suffix}"
        path.write_text(HEADER + "".join(rows) + GOOD.replace("sku-1", "sku-x") * tail)
        with pytest.raises(ValueError, match=rf"^row {row_number} \(line {row_number + 1}\): "):
            read_feed(path)

    @pytest.mark.parametrize(
        ("field", "size"),
        [("description", 10_001), ("description", 200_000), ("title", 150_000)],
    )
    def test_over_long_field_is_a_row_error(self, tmp_path, field, size):
        """A field of any length (even past csv's 128 KB default) gets the row's length error."""
        row = dict(zip(HEADER.strip().split(","), GOOD.strip().split(","), strict=True))
        row[field] = "x" * size
        path = tmp_path / "feed.csv"
        path.write_text(HEADER + ",".join(row.values()) + "\n" + GOOD.replace("sku-1", "sku-2"))
        report = read_feed(path)
        assert [p.id for p in report.products] == ["sku-2"]
        assert [(p.row, p.field) for p in report.problems] == [(1, field)]
        assert "longer than" in report.problems[0].message

    @pytest.mark.parametrize(
        ("suffix", "title"),
        [
            (".tsv", '"Cozy 12in blanket'),
            (".tsv", 'Cozy 12" blanket'),
            (".tsv", '"Cozy" blanket'),
            (".txt", '"Cozy 12in blanket'),
            (".csv", '"Cozy 12in blanket'),  # sniffed as tab-separated
        ],
    )
    def test_tsv_quotes_are_plain_characters(self, tmp_path, suffix, title):
        """Tab-separated feeds have no quoting: every line is one row, quotes kept as written."""
        header = HEADER.replace(",", "\t")
        lines = [GOOD.replace(",", "\t").replace("sku-1", f"sku-{n}") for n in range(1, 6)]
        lines[1] = lines[1].replace("\tMug\t", f"\t{title}\t")
        path = tmp_path / f"feed{suffix}"
        path.write_text(header + "".join(lines))
        report = read_feed(path)
        assert (report.rows, report.problems) == (5, [])
        assert [p.id for p in report.products] == [f"sku-{n}" for n in range(1, 6)]
        assert report.products[1].title == title

    @pytest.mark.parametrize(
        ("fields", "expected"),
        [
            ("<id>tag:shop.example,2024:product-1</id><g:id>SKU-1</g:id>", "SKU-1"),
            ("<g:id>SKU-1</g:id><id>tag:shop.example,2024:product-1</id>", "SKU-1"),
            ("<id>SKU-1</id>", "SKU-1"),
        ],
    )
    def test_atom_g_fields_win_over_plain_ones(self, tmp_path, fields, expected):
        """In an Atom entry, <g:id> is the product id even after Atom's own <id>."""
        path = tmp_path / "feed.xml"
        path.write_text(
            '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"'
            ' xmlns:g="http://base.google.com/ns/1.0"><entry>'
            f"{fields}<title>Mug</title><g:title>Blue mug</g:title><summary>A mug</summary>"
            '<g:description>A mug</g:description><link href="https://shop.example/p/1"/>'
            "<g:image_link>https://shop.example/i.jpg</g:image_link><g:price>12.00 EUR</g:price>"
            "<g:availability>in stock</g:availability></entry></feed>"
        )
        report = read_feed(path)
        assert report.problems == []
        assert [(p.id, p.title) for p in report.products] == [(expected, "Blue mug")]


class TestReplacement:
    @pytest.mark.parametrize(
        ("current", "new", "allow_empty", "warning"),
        [
            (0, 0, False, None),  # nothing kept yet: nothing to lose
            (0, 10, False, None),
            (10, 10, False, None),
            (10, 5, False, None),  # exactly half: no warning
            (10, 4, False, "under 50% of the 10 kept"),
            (10, 1, False, "under 50% of the 10 kept"),
            (10, 0, True, "emptied (--allow-empty)"),
            (10, 30, False, None),
        ],
    )  # fmt: skip
    def test_kept_with_or_without_warning(self, current, new, allow_empty, warning):
        """A replacing feed is kept; under half the kept catalog it is warned about."""
        found = check_replacement(current, new, allow_empty=allow_empty)
        assert found == warning if warning is None else warning in (found or "")

    @pytest.mark.parametrize("current", [1, 10_000])
    def test_empty_feed_never_replaces_a_catalog_unasked(self, current):
        """No good product and a non-empty catalog: refused, naming the flag that allows it."""
        with pytest.raises(EmptyFeedError, match="--allow-empty") as caught:
            check_replacement(current, 0)
        assert f"{current:,} kept products" in str(caught.value)


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
