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


def test_a_long_run_sends_every_redeem_with_a_key_of_its_own():
    """The carts come round again when a run outlasts them; a repeated idempotency key would be
    answered from the stored result and make the redeem look cheaper than it is."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("bench_loyalty", ROOT / "bench" / "loyalty.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    requests = bench.requests_for("/checkout/redeem", "t", 8000, 3, 40, 7)
    keys = bench.fresh_keys()
    sent = [head + next(keys) + tail for _ in range(4) for head, tail in requests]  # each cart four times
    bodies = []
    for raw in sent:
        head, body = raw.split(b"\r\n\r\n", 1)
        assert int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]) == len(body)
        bodies.append(json.loads(body))
    assert len({b["idempotency_key"] for b in bodies}) == 12
    assert [b["items"] for b in bodies[:3]] == [b["items"] for b in bodies[3:6]]
    quote = bench.requests_for("/checkout/quote", "t", 8000, 1, 40, 7)[0]
    assert quote[1] == b"" and "idempotency_key" not in json.loads(quote[0].split(b"\r\n\r\n", 1)[1])
