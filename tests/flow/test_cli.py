"""``kaskad flow validate|import|export``: exit codes and output lines."""

from __future__ import annotations

import msgspec
import pytest

from kaskad.cli import main
from kaskad.flow import model

from tests.flow.helpers import node, sample


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("KASKAD_HOME", str(tmp_path))
    monkeypatch.delenv("KASKAD_LOAD_PLUGINS", raising=False)
    return tmp_path


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_bytes(doc if isinstance(doc, bytes) else msgspec.json.encode(doc))
    return str(path)


def test_validate_prints_ok_or_one_line_per_error(env, capsys):
    good = write(env, "good.json", sample())
    bad_doc = sample()
    node(bad_doc, "hello")["channel"] = "pigeon"
    del node(bad_doc, "check")["else"]
    bad = write(env, "bad.json", bad_doc)
    broken = write(env, "broken.json", b"{oops")
    assert main(["flow", "validate", good]) == 0
    assert capsys.readouterr().out == f"{good}: ok\n"
    assert main(["flow", "validate", good, bad, broken, str(env / "missing.json")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{good}: ok"
    assert lines[1].startswith(f"{bad}: hello: nodes[0].channel: unknown channel 'pigeon'")
    assert lines[2].startswith(f"{bad}: check: nodes[3].else: port 'else' is not connected")
    assert lines[3].startswith(f"{broken}: -: -: malformed JSON")
    assert lines[4].startswith(f"{env / 'missing.json'}: -: -: cannot read")
    assert len(lines) == 5


def test_import_publish_and_export(env, db_url, capsys, monkeypatch):
    monkeypatch.setenv("KASKAD_DATABASE_URL", db_url)
    path = write(env, "sample.json", sample())
    assert main(["flow", "import", path, "--publish"]) == 0
    assert capsys.readouterr().out == f"{path}: sample version 1 published\n"
    assert main(["flow", "import", path]) == 0  # retried: nothing new
    assert capsys.readouterr().out == f"{path}: sample version 1 published\n"
    assert main(["flow", "import", write(env, "v2.json", sample(name="Two"))]) == 0
    assert "sample version 2 draft" in capsys.readouterr().out

    assert main(["flow", "export", "sample", "--version", "1"]) == 0
    out = capsys.readouterr().out.encode()
    assert out == model.canonical_json(msgspec.convert(sample(), model.Flow))
    target = env / "out.json"
    assert main(["flow", "export", "sample", "-o", str(target)]) == 0
    assert msgspec.json.decode(target.read_bytes())["name"] == "Two"
    assert main(["flow", "export", "ghost"]) == 1
    assert "no flow with key 'ghost'" in capsys.readouterr().err


def test_import_of_bad_files_exits_1_and_names_them(env, db_url, capsys, monkeypatch):
    monkeypatch.setenv("KASKAD_DATABASE_URL", db_url)
    invalid_doc = sample()
    node(invalid_doc, "pause")["for"] = "later"
    invalid = write(env, "invalid.json", invalid_doc)
    broken = write(env, "broken.json", b"[1]")
    assert main(["flow", "import", invalid, broken, "--publish"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{invalid}: pause: nodes[2].for: expected an ISO-8601 duration")
    assert err[1] == f"{invalid}: sample version 1 saved as an invalid draft, not published"
    assert err[2].startswith(f"{broken}: -: -: a flow is a JSON object")
    # the invalid one is kept as a draft, never published
    assert main(["flow", "import", invalid]) == 0
    assert "sample version 1 draft (invalid)" in capsys.readouterr().out


def test_the_installed_command(env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    good = write(env, "good.json", sample())
    bad_doc = sample()
    node(bad_doc, "pause")["for"] = "P0D"
    bad = write(env, "bad.json", bad_doc)
    kaskad = Path(sys.executable).parent / "kaskad"
    r = subprocess.run([str(kaskad), "flow", "validate", good, bad], capture_output=True, text=True, env={**os.environ}, timeout=60)
    assert r.returncode == 1
    assert r.stdout.splitlines() == [f"{good}: ok", f"{bad}: pause: nodes[2].for: 'P0D' must be longer than zero"]
