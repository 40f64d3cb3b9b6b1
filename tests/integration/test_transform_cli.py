"""``pinbridge transform`` as a user runs it: JSON Lines through the real command."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

NOW = 1_795_345_200
PINBRIDGE = [sys.executable, "-m", "pinbridge"]


def run(lines: list[str], *args: str) -> list[dict]:
    completed = subprocess.run(
        [*PINBRIDGE, "transform", "--now", str(NOW), *args],
        input="\n".join(lines).encode() + b"\n",
        capture_output=True,
        check=True,
        timeout=60,
    )
    return [json.loads(line) for line in completed.stdout.splitlines()]


def test_one_line_out_per_line_in_and_bad_lines_do_not_stop_it():
    """Each input line gives one output line in order; a line that is not JSON is ok: false."""
    out = run(
        [
            json.dumps(
                {
                    "type": "track",
                    "event": "Product Added",
                    "timestamp": NOW,
                    "context": {"ip": "1.2.3.4", "userAgent": "UA"},
                }
            ),
            "{not json",
            "",
            json.dumps({"type": "identify", "userId": "u"}),
            json.dumps(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "timestamp": NOW,
                    "properties": {"revenue": "lots"},
                    "context": {"ip": "1.2.3.4", "userAgent": "UA"},
                }
            ),
            json.dumps({"event_name": "lead", "event_time": NOW, "user_data": {"em": "a@b.co"}}),
        ]
    )
    assert [line["ok"] for line in out] == [True, False, True, False, True]
    assert out[0]["event"]["event_name"] == "add_to_cart"
    assert "not valid JSON" in out[1]["errors"][0]["message"]
    assert out[2] == {"ok": True, "events": [], "warnings": []}
    assert out[3]["errors"] == [{"field": "properties.revenue", "message": "must be a number"}]
    assert out[4]["event"]["user_data"]["em"] == [hashlib.sha256(b"a@b.co").hexdigest()]


def test_config_file_mapping_and_fan_out(tmp_path: Path):
    """--config reads pinbridge.toml: a fan-out mapping gives "events" with distinct ids."""
    config = tmp_path / "pinbridge.toml"
    config.write_text(
        '[transform]\ndefault_region = "GB"\n[transform.mapping]\n"Joined" = ["signup", "lead"]\n'
    )
    out = run(
        [
            json.dumps(
                {
                    "type": "track",
                    "event": "Joined",
                    "messageId": "j1",
                    "timestamp": NOW,
                    "context": {"traits": {"email": "a@b.co", "phone": "020 7946 0958"}},
                }
            )
        ],
        "--config",
        str(config),
    )
    events = out[0]["events"]
    assert [(e["event_name"], e["event_id"]) for e in events] == [
        ("signup", "j1"),
        ("lead", "j1:lead"),
    ]
    assert events[0]["user_data"]["ph"] == [hashlib.sha256(b"442079460958").hexdigest()]


def test_bad_config_is_a_clear_error(tmp_path: Path):
    """A typo in the configuration stops the command with a message naming the key."""
    config = tmp_path / "pinbridge.toml"
    config.write_text('[transform]\nunmaped = "drop"\n')
    completed = subprocess.run(
        [*PINBRIDGE, "transform", "--config", str(config)],
        input=b"",
        capture_output=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert b"unmaped" in completed.stderr


def test_a_line_that_is_not_utf8_is_one_bad_line():
    """A stray byte (Latin-1 text) gives ok: false for its line; later lines still come out."""
    good = json.dumps(
        {
            "type": "track",
            "event": "Signed Up",
            "messageId": "u",
            "timestamp": NOW,
            "context": {"traits": {"email": "a@b.co"}},
        }
    )
    latin = b'{"type": "track", "event": "Signed Up", "messageId": "M\xfcnchen", "timestamp": 1}'
    completed = subprocess.run(
        [*PINBRIDGE, "transform", "--now", str(NOW)],
        input=b"\n".join([good.encode(), latin, b"\xff", good.encode()]) + b"\n",
        capture_output=True,
        check=True,
        timeout=60,
    )
    out = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [line["ok"] for line in out] == [True, False, False, True]
    assert "not UTF-8" in out[1]["errors"][0]["message"]
    assert "nchen" not in completed.stdout.decode()
    assert b"Traceback" not in completed.stderr
