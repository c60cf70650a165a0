"""The README's first commands work as a newcomer types them, against a real `kaskad serve`."""

import os
import re
import subprocess
import sys
from pathlib import Path

from kaskad.testing.servers import free_port, wait_port

ROOT = Path(__file__).parents[1]


def test_readme_quickstart_block_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)\n```", text, re.S) if "admin-token" in b)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KASKAD_")}
    env["HOME"] = str(tmp_path)  # the embedded default lives in ~/.kaskad
    port = free_port()
    env["KASKAD_PORT"] = str(port)
    block = block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    server = subprocess.Popen([sys.executable, "-m", "kaskad", "serve"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=60)
        r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert '"channels"' in r.stdout and "restaurant-winback.json: ok" in r.stdout
        assert '"key":"restaurant-winback"' in r.stdout.replace(" ", "")
    finally:
        server.terminate()
        server.wait(timeout=30)
