"""``pinbridge catalog load`` as an operator runs it: a failed export never wipes the catalog."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from pinbridge.cli import main
from pinbridge.store import open_store

HEADER = "id,title,description,link,image_link,price,availability\n"


def rows(count: int, *, price: str = "9.99 USD") -> str:
    return "".join(
        f"sku-{n},Mug,A mug,https://shop.example/p/{n},https://shop.example/i/{n}.jpg,"
        f"{price},in stock\n"
        for n in range(count)
    )


@pytest.fixture(name="load")
def _load(tmp_path: Path, monkeypatch):
    config = tmp_path / "pinbridge.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "pb.db"}"\n')
    for key in list(os.environ):
        if key.startswith("PINBRIDGE_"):
            monkeypatch.delenv(key)
    # catalog load keeps products in an existing database (run, worker or migrate make it)
    assert CliRunner().invoke(main, ["migrate", "--config", str(config)]).exit_code == 0

    def load(feed_text: str, *args: str):
        feed = tmp_path / "feed.csv"
        feed.write_text(feed_text)
        return CliRunner().invoke(
            main, ["catalog", "load", str(feed), *args, "--config", str(config)]
        )

    return load


@pytest.fixture(name="catalog_size")
def _catalog_size(tmp_path: Path):
    def size() -> int:
        async def read() -> int:
            store = open_store(f"sqlite:///{tmp_path / 'pb.db'}")
            try:
                return (await store.catalog_size())[0]
            finally:
                await store.aclose()

        return asyncio.run(read())

    return size


class TestEmptyFeed:
    @pytest.mark.parametrize(
        ("feed", "bad_rows"),
        [
            (HEADER, 0),  # a failed export: the header and nothing else
            (HEADER + rows(3, price="9.99"), 3),  # every row bad
        ],
        ids=["header-only", "all-rows-bad"],
    )
    def test_refused_and_catalog_kept(self, load, catalog_size, feed, bad_rows):
        """A feed without a good product leaves the kept catalog as it was, exit 1, saying why."""
        assert load(HEADER + rows(4)).exit_code == 0
        result = load(feed)
        assert result.exit_code == 1
        assert "no good product" in result.output and "--allow-empty" in result.output
        assert "Nothing was changed" in result.output and "Traceback" not in result.output
        assert f"{bad_rows} bad; nothing kept" in result.output
        assert catalog_size() == 4

    def test_allow_empty_empties_the_catalog(self, load, catalog_size):
        """--allow-empty empties the catalog on purpose (with a warning)."""
        assert load(HEADER + rows(4)).exit_code == 0
        result = load(HEADER, "--allow-empty")
        assert result.exit_code == 0, result.output
        assert "emptied" in result.stderr
        assert catalog_size() == 0


class TestShrinkingFeed:
    def test_kept_with_a_warning(self, load, catalog_size):
        """A feed under half the kept catalog replaces it, with a warning on stderr; --append
        removes nothing, so it is not judged."""
        assert load(HEADER + rows(10)).exit_code == 0
        result = load(HEADER + rows(4))
        assert result.exit_code == 0, result.output
        assert "under 50% of the 10 kept" in result.stderr
        assert catalog_size() == 4
        appended = load(HEADER, "--append")
        assert appended.exit_code == 0, appended.output
        assert appended.stderr == ""
        assert catalog_size() == 4
