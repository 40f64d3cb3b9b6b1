"""``[server] cors_origins`` and ``trusted_proxies``: read, checked, never printing write keys."""

from __future__ import annotations

import pytest

from pinbridge.config import load_settings
from pinbridge.errors import ConfigError


class TestBrowserSettings:
    def test_read_from_toml(self, tmp_path):
        """Origins per write key and proxy networks are read from the file."""
        path = tmp_path / "pinbridge.toml"
        path.write_text(
            '[server]\nwrite_keys = ["wk-SECRET"]\n'
            'trusted_proxies = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]\n'
            'cors_origins = { "wk-SECRET" = ["https://shop.example", "*"] }\n'
        )
        server = load_settings(path, {}).server
        assert server.cors_origins == {"wk-SECRET": ("https://shop.example", "*")}
        assert server.trusted_proxies == ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7")
        assert "SECRET" not in repr(server)
        assert "cors_origins=<1 write keys>" in repr(server)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ('[server]\ntrusted_proxies = ["10.0.0.0/33"]\n', "not a network"),
            ('[server]\ntrusted_proxies = ["proxy.local"]\n', "not a network"),
            ('[server]\ncors_origins = { k = ["shop.example"] }\n', "not an origin"),
            (
                '[server]\ncors_origins = { k = ["https://shop.example/checkout"] }\n',
                "not an origin",
            ),
            ('[server]\ncors_origins = { k = "https://shop.example" }\n', "cors_origins"),
        ],
    )
    def test_bad_values_are_errors(self, tmp_path, text, message):
        """A proxy that is not a network, or an origin that is not an origin, stops start-up."""
        path = tmp_path / "pinbridge.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(path, {})
