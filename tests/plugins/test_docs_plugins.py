"""docs/plugins: a page per hook with an example that runs, and a guide that shows the example
package exactly as it is. A hook added to kaskad/hookspecs.py without a page fails here."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from kaskad import hookspecs
from kaskad.plugins.manager import load_registry

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs" / "plugins"
EXAMPLE = Path(__file__).parent / "example_channel"
HOOKS = sorted(name for name, f in vars(hookspecs).items() if callable(f) and hasattr(f, "kaskad_spec"))


def blocks(text: str, lang: str, tag: str) -> list[str]:
    return re.findall(rf"```{lang} {tag}\n(.*?)```", text, re.S)


def test_the_contract_has_hooks():
    assert {"register_channels", "register_mechanics", "register_node_kinds"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_page_with_an_example(hook):
    page = DOCS / f"{hook}.md"
    assert page.exists(), f"hook {hook} is not documented: write docs/plugins/{hook}.md (see register_channels.md)"
    text = page.read_text()
    assert text.startswith(f"# `{hook}(")
    (example,) = blocks(text, "python", "example")
    assert "@hookimpl" in example and f"def {hook}(" in example
    assert f"({hook}.md)" in (DOCS / "README.md").read_text()


@pytest.mark.parametrize("hook", HOOKS)
def test_the_examples_run(hook):
    text = (DOCS / f"{hook}.md").read_text()
    (example,) = blocks(text, "python", "example")
    plugin = types.ModuleType(f"docs_example_{hook}")
    sys.modules[plugin.__name__] = plugin  # a real module: msgspec resolves annotations through it
    exec(compile(example, f"docs/plugins/{hook}.md", "exec"), plugin.__dict__)
    registry = load_registry(allow=[], extra=[plugin])
    assert not registry.errors
    usages = blocks(text, "python", "usage")
    assert usages, f"docs/plugins/{hook}.md shows no use of what the example registers"
    for usage in usages:
        exec(compile(usage, f"docs/plugins/{hook}.md (usage)", "exec"), {"registry": registry, **plugin.__dict__})


def test_the_guide_shows_the_example_package_as_it_is():
    text = (DOCS / "channels.md").read_text()
    shown = dict((path, body) for _, path, body in re.findall(r"```(\w+) file=(\S+)\n(.*?)```", text, re.S))
    files = {p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob("*") if p.is_file() and p.suffix in (".py", ".toml")
             and "__pycache__" not in p.parts and "build" not in p.parts}
    assert set(shown) == files
    for path, body in shown.items():
        assert body == (EXAMPLE / path).read_text(), f"docs/plugins/channels.md shows an outdated {path}"
