"""The editor's own unit tests (vitest): flow <-> canvas round trip, editing operations, the schema form.

The schema-form tests read the catalog this server publishes right now, so a change in a
node kind, channel or mechanic schema that the form cannot render fails here.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from kaskad.api.catalog import build_catalog
from kaskad.config import Settings
from kaskad.runtime import Runtime

EDITOR = Path(__file__).parents[2] / "web-editor"


def _live_catalog(path: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="kaskad-editor-unit-"))
    try:
        runtime = Runtime.create(Settings.from_env({"KASKAD_HOME": str(home)}))
        try:
            path.write_text(json.dumps(build_catalog(runtime)))
        finally:
            runtime.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_vitest_suite_passes(tmp_path):
    assert shutil.which("npx"), "node/npm are needed for the editor tests (Debian: apt-get install nodejs npm)"
    if not (EDITOR / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EDITOR, check=True, capture_output=True, timeout=600)
    catalog = tmp_path / "catalog.json"
    _live_catalog(catalog)
    env = {**os.environ, "KASKAD_CATALOG": str(catalog), "CI": "1", "NO_COLOR": "1"}
    r = subprocess.run(["npx", "vitest", "run", "--reporter=verbose"], cwd=EDITOR, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    assert " passed" in r.stdout and "failed" not in r.stdout.split("Test Files")[-1]
