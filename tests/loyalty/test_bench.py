"""The command docs/loyalty.md gives for the checkout benchmark runs and every call succeeds.
(Speed is what the bench prints; this only checks that it works.)"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.postgres


def test_the_documented_bench_command_runs(tmp_path):
    documented = re.search(r"```sh\n(\.venv/bin/python bench/loyalty\.py[^\n]*)\n```", (ROOT / "docs" / "loyalty.md").read_text())
    assert documented, "docs/loyalty.md shows how to run bench/loyalty.py"
    args = documented.group(1).split()[1:]  # bench/loyalty.py and its options
    small = ["--contacts", "40", "--clients", "2", "--seconds", "1"]
    r = subprocess.run([sys.executable, *args, *small], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line for line in r.stdout.splitlines() if line.startswith("/checkout/")]
    assert [line.split()[0] for line in lines] == ["/checkout/quote", "/checkout/redeem"]
    assert all("(0 refused)" in line for line in lines), r.stdout
    assert "--workers 2" in r.stdout  # what a deployment on this box runs
