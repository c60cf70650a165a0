"""Message templates: jinja2's sandboxed environment, shared by every channel.

Marketers write templates; the sandbox keeps them from reaching Python
internals. A missing variable renders empty, but a syntax error is reported
with its line so that validation can name the field.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

_text_env = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
_html_env = ImmutableSandboxedEnvironment(autoescape=select_autoescape(default=True), keep_trailing_newline=True)


class TemplateError(ValueError):
    pass


@lru_cache(maxsize=4096)
def _compile(source: str, html: bool):
    """The compiled template, with its globals as a plain dict (see :func:`render`)."""
    try:
        template = (_html_env if html else _text_env).from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    return template, dict(template.globals)


def check(source: str, html: bool = False) -> None:
    """Raise :class:`TemplateError` if ``source`` does not compile."""
    _compile(source, html)


def render(source: str, context: dict[str, Any], html: bool = False) -> str:
    """Render one template string; ``html=True`` autoescapes variables."""
    if "{" not in source:
        return source
    template, globals_ = _compile(source, html)
    env = template.environment
    try:
        # Template.render(), without turning the template's globals (a ChainMap over the
        # environment's) into a dict twice per call: a tenth of a worker's time went there.
        ctx = env.context_class(env, {**globals_, **context}, template.name, template.blocks, globals=globals_)
        return env.concat(template.root_render_func(ctx))
    except TemplateError:
        raise
    except Exception as exc:  # SecurityError, TypeError in a filter…: the marketer must see it
        raise TemplateError(f"template failed: {exc}") from exc


def render_message(message: Any, context: dict[str, Any], html_fields: frozenset[str] = frozenset({"html"})) -> Any:
    """Render every string inside a message dict (recursively); fields named in ``html_fields`` are autoescaped."""
    if isinstance(message, dict):
        return {
            k: (render(v, context, html=k in html_fields) if isinstance(v, str) else render_message(v, context, html_fields))
            for k, v in message.items()
        }
    if isinstance(message, list):
        return [render_message(v, context, html_fields) for v in message]
    if isinstance(message, str):
        return render(message, context)
    return message
