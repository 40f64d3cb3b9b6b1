"""Offline import: a 10,000-row CRM file through `pinbridge import`, timed.

Baseline measured in the same run: reading and parsing the same CSV with the standard
library alone. Goal (issue 6): 10,000 rows in under 10 seconds.

Usage: python bench/import.py [--rows N]
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_file(path: Path, rows: int) -> None:
    rng = random.Random(11)
    now = time.time()
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            ["Order", "Email", "Phone", "First Name", "Zip", "Total", "Currency", "Purchased"]
        )
        for n in range(rows):
            moment = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - rng.randint(60, 5 * 86400))
            )
            writer.writerow(
                [
                    f"S-{n}",
                    f"buyer{n % 4000}@example.com",
                    f"+1 650 555 {n % 10000:04d}",
                    "Jane",
                    "94103",
                    f"{rng.uniform(5, 300):.2f}",
                    "USD",
                    moment,
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crm.csv"
        write_file(path, args.rows)
        start = time.perf_counter()
        with path.open(newline="") as stream:
            parsed = sum(1 for _ in csv.DictReader(stream))
        baseline = time.perf_counter() - start
        env = {"PINBRIDGE_DATABASE_URL": f"sqlite:///{folder}/pb.db", "PATH": "/usr/bin:/bin"}
        command = [
            sys.executable,
            "-m",
            "pinbridge",
            "import",
            str(path),
            "--map",
            "order_id=Order",
            "--map",
            "time=Purchased",
        ]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        elapsed = time.perf_counter() - start
    print(done.stdout.strip().splitlines()[0])
    print(f"baseline csv parse: {parsed:,} rows in {baseline:.3f} s")
    print(
        f"pinbridge import:   {args.rows:,} rows in {elapsed:.2f} s "
        f"({args.rows / elapsed:,.0f} rows/s, process start included)"
    )
    print(f"ratio import / csv parse: {elapsed / baseline:,.0f}x")
    print(
        f"goal < 10 s for 10,000 rows: {'met' if elapsed < 10 * args.rows / 10_000 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
