"""docs/editor.md: its commands and its preview example run and answer as the page says."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parents[2] / "docs" / "editor.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)\n```", DOC.read_text(), re.S)


def test_the_preview_example_answers_as_documented(api):
    curl = next(b for b in blocks("sh") if "/editor/preview" in b)
    args = shlex.split(curl.replace("\\\n", " "))
    body = json.loads(args[args.index("-d") + 1])
    (answer,) = blocks("json")
    r = api.post("/api/v1/editor/preview", role="marketer", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(answer)


def test_the_token_command_makes_a_marketer_token(tmp_path):
    command = next(b for b in blocks("sh") if b.startswith("kaskad token create"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KASKAD_")}
    env["KASKAD_HOME"] = str(tmp_path)
    args = shlex.split(command)[1:]
    r = subprocess.run([sys.executable, "-m", "kaskad", *args], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip().splitlines()[-1]

    from kaskad import tokens
    from kaskad.config import Settings
    from kaskad.runtime import Runtime

    runtime = Runtime.create(Settings.from_env({"KASKAD_HOME": str(tmp_path)}))
    try:
        with runtime.sessions() as session:
            assert tokens.role_of(session, token) == "marketer"
    finally:
        runtime.close()
