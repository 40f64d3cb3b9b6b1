"""``pinbridge import`` as a user runs it: files with mistakes, through the real command."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PINBRIDGE = [sys.executable, "-m", "pinbridge"]


def iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))


@pytest.fixture(name="run")
def _run(tmp_path: Path):
    config = tmp_path / "pinbridge.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "pb.db"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PINBRIDGE_", "PINTEREST_"))}
    migrate = [*PINBRIDGE, "migrate", "--config", str(config)]
    subprocess.run(migrate, env=env, cwd=tmp_path, timeout=60, check=True, capture_output=True)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PINBRIDGE, "import", *args, "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )

    return run


def report_of(path: Path) -> list[dict[str, str]]:
    with path.with_name(path.name + ".report.csv").open(encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_shifted_columns_never_put_personal_data_in_the_report(run, tmp_path: Path):
    """An unquoted comma shifts an email into the time column: the report says why, not what."""
    crm = tmp_path / "crm.csv"
    crm.write_text(
        "Order,Name,Email,Purchased,Total\n"
        "77,Doe, Jane,jane.doe@example.com,2026-11-22T10:00:00,5\n"
        f"78,Roe,rich.roe@example.com,{iso(time.time() - 60)},5\n"
    )
    completed = run(str(crm), "--map", "order_id=Order", "--map", "time=Purchased")
    assert completed.returncode == 1, completed.stderr
    report = report_of(crm)
    assert [(r["row"], r["status"]) for r in report] == [("1", "rejected"), ("2", "accepted")]
    assert report[0]["reasons"].startswith("Purchased (time): ")
    assert "jane" not in crm.with_name("crm.csv.report.csv").read_text().lower()
    assert "jane" not in (completed.stdout + completed.stderr).lower()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("Purchased", "SECRET-jane@example.com"),
        ("Email", "SECRET-not-an-email"),
        ("Phone", "SECRET-phone-12"),
        ("Birthday", "SECRET-1990"),
        ("Gender", "SECRET-g"),
        ("Total", "SECRET-12"),
        ("Currency", "SECRET"),
        ("Quantity", "SECRET-2"),
        ("Zip", "SECRET-zip-" + "9" * 300),
        ("Country", "SECRET-country"),
    ],
)
def test_no_bad_value_is_copied_into_the_report(run, tmp_path: Path, column, value):
    """Whatever field holds a bad value, its report line names the field, never the value."""
    row = {
        "Order": "1",
        "Email": "a@example.com",
        "Phone": "",
        "Birthday": "",
        "Gender": "",
        "Total": "5",
        "Currency": "USD",
        "Quantity": "",
        "ProductID": "sku-1",
        "Zip": "",
        "Country": "",
        "Purchased": iso(time.time() - 60),
    }
    row[column] = value
    crm = tmp_path / "crm.csv"
    with crm.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)
    completed = run(str(crm), "--map", "time=Purchased")
    assert completed.returncode in (0, 1), completed.stderr
    assert "SECRET" not in crm.with_name("crm.csv.report.csv").read_text()
    assert "SECRET" not in completed.stdout + completed.stderr


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(run, tmp_path: Path):
    """Latin-1 bytes: exit status 1, one line naming the line and the fix; nothing imported."""
    crm = tmp_path / "latin.csv"
    crm.write_bytes(
        b"Order,City,Purchased\n"
        + f"1,Berlin,{iso(time.time() - 60)}\n".encode()
        + f"2,M\xfcnchen,{iso(time.time() - 60)}\n".encode("latin-1")
    )
    completed = run(str(crm))
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert "latin.csv: line 3 is not UTF-8" in completed.stderr
    assert "save the file as UTF-8" in completed.stderr
    assert "nchen" not in completed.stderr
    assert not crm.with_name("latin.csv.report.csv").exists()


def test_jsonl_rows_may_lack_a_mapped_key(run, tmp_path: Path):
    """In JSON Lines a mapped key missing from one row is no value for that row, not an error."""
    pos = tmp_path / "pos.jsonl"
    now = time.time()
    rows = [
        {"id": "p1", "mail": "a@example.com", "paid": 10, "when": iso(now - 60)},
        {"id": "p2", "mail": "b@example.com", "when": iso(now - 60)},  # no "paid": no value
        {"id": "p3", "mail": "c@example.com", "paid": 10},  # no "when": no time
    ]
    pos.write_text("".join(json.dumps(r) + "\n" for r in rows))
    completed = run(str(pos), "--map", "email=mail", "--map", "value=paid", "--map", "time=when")
    assert completed.returncode == 1, completed.stderr
    report = report_of(pos)
    assert [(r["row"], r["status"]) for r in report] == [
        ("1", "accepted"),
        ("2", "accepted"),
        ("3", "rejected"),
    ]
    assert report[2]["reasons"] == "when (time): an offline conversion needs the time it happened"


def test_report_in_file_order_and_totals_add_up(run, tmp_path: Path):
    """A row refused before the accept step keeps its place; the last line counts every row."""
    crm = tmp_path / "crm.csv"
    when = iso(time.time() - 60)
    crm.write_text(
        "Order,Email,Purchased\n"
        f"1,a@example.com,{when}\n"
        "2,b@example.com,\n"  # no time: refused before the accept step
        f"3,c@example.com,{when}\n"
    )
    completed = run(str(crm), "--map", "order_id=Order", "--map", "time=Purchased")
    assert completed.returncode == 1, completed.stderr
    assert [(r["row"], r["status"]) for r in report_of(crm)] == [
        ("1", "accepted"),
        ("2", "rejected"),
        ("3", "accepted"),
    ]
    assert (
        "3 rows: 2 accepted, 0 already imported, 1 rejected, 0 dropped, 0 ignored;"
        in completed.stdout
    )


def test_rejected_rows_exit_1_naming_the_column(run, tmp_path: Path):
    """A rejected row makes the import exit 1; its reason, in the report and on stderr, names
    the file's column and the field it was read as, never the internal field or the value."""
    crm = tmp_path / "crm.csv"
    when = iso(time.time() - 60)
    crm.write_text(
        "Order,Email,Total,Currency,Qty,ProductID,Purchased\n"
        f"1,a@example.com,lots,USD,,sku,{when}\n"
        f"2,b@example.com,5,XYZ,,sku,{when}\n"
        f"3,c@example.com,5,USD,many,sku,{when}\n"
        f"4,d@example.com,5,USD,,sku,{when}\n"
    )
    completed = run(str(crm), "--map", "time=Purchased", "--map", "quantity=Qty")
    assert completed.returncode == 1
    expected = [
        "Total (value): must be a number",
        "Currency: is not an ISO-4217 currency code",
        "Qty (quantity): must be a whole number",
    ]
    assert [r["reasons"] for r in report_of(crm)[:3]] == expected
    for number, reason in enumerate(expected, start=1):
        assert f"row {number}: {reason}" in completed.stderr
    assert "3 of 4 rows rejected" in completed.stderr
    assert "properties." not in completed.stderr + completed.stdout
    assert "lots" not in completed.stderr and "many" not in completed.stderr


def test_all_rows_accepted_exit_0_naming_the_store(run, tmp_path: Path):
    """Without a rejected row the import exits 0 and says which database holds the events."""
    crm = tmp_path / "crm.csv"
    crm.write_text(f"Order,Email,Purchased\n1,a@example.com,{iso(time.time() - 60)}\n")
    completed = run(str(crm), "--map", "time=Purchased")
    assert completed.returncode == 0, completed.stderr
    assert f"wait in {tmp_path / 'pb.db'} (SQLite)" in completed.stdout


def test_a_row_without_a_usable_identifier_says_which_column_failed(run, tmp_path: Path):
    """A row whose only identifier is unusable (an email that is not one) is rejected for
    the identifier rule, and the report also names the column that was left out, and why
    (never its value)."""
    crm = tmp_path / "crm.csv"
    crm.write_text(
        "Order,Mail,Purchased,Total\n"
        f"81,jane.doe(at)example.com,{iso(time.time() - 60)},5\n"
        f"82,rich.roe@example.com,{iso(time.time() - 60)},5\n"
    )
    args = ["--map", "order_id=Order", "--map", "email=Mail", "--map", "time=Purchased"]
    completed = run(str(crm), *args, "--map", "value=Total")
    assert completed.returncode == 1, completed.stderr
    report = report_of(crm)
    assert [r["status"] for r in report] == ["rejected", "accepted"]
    reasons = report[0]["reasons"]
    assert reasons.startswith("user_data: needs em")
    assert "Mail (email): not an email address" in reasons
    assert "jane.doe" not in reasons and "jane.doe" not in completed.stderr
