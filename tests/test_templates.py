import pytest

from kaskad.templates import TemplateError, render, render_message


def test_renders_contact_data_and_escapes_html_fields():
    ctx = {"contact": {"first_name": "<Ann>"}}
    out = render_message({"subject": "Hi {{ contact.first_name }}", "html": "<p>{{ contact.first_name }}</p>"}, ctx)
    assert out == {"subject": "Hi <Ann>", "html": "<p>&lt;Ann&gt;</p>"}


def test_sandbox_blocks_python_internals():
    with pytest.raises(TemplateError):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})


def test_syntax_error_names_the_line():
    with pytest.raises(TemplateError, match="line 2"):
        render("ok\n{% if %}", {})
