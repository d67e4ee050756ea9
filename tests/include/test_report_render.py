"""Unit tests for sparkify.report_render: the escaping the environments guarantee, shown
with small stand-in templates and a stand-in model (the real templates are exercised in
tests/include/test_run_report.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from jinja2 import UndefinedError

from sparkify.report_format import MarkdownSafe, md_text
from sparkify.report_render import html_environment, markdown_environment

SCRIPT = "<script>alert('x')</script>"


def test_markdown_escapes_every_value_unless_it_is_markdown_already():
    template = markdown_environment().from_string(
        "{{ text }} | {{ text | code }} | {{ safe }} | {{ number }} | {{ inner_word }}"
    )
    out = template.render(text=f"*a* {SCRIPT} [l](u) |", safe=MarkdownSafe("**b**"),
                          number=1234, inner_word="load_songplays_fact_table")  # fmt: skip
    plain, code, safe, number, word = out.split(" | ", 4)
    assert plain == r"\*a\* \<script\>alert('x')\</script\> \[l\](u) \|"
    assert code == f"`*a* {SCRIPT} [l](u) \\|`"  # a code span: shown as it is, not run
    assert safe == "**b**" and number == "1234" and word == "load_songplays_fact_table"


def test_md_text_leaves_underscores_inside_words():
    assert md_text("_lead and trail_ in_word") == r"\_lead and trail\_ in_word"
    assert md_text(MarkdownSafe("*kept*")) == "*kept*"


def test_html_escapes_every_value():
    template = html_environment().from_string("<p title='{{ v }}'>{{ v }}</p>")
    out = template.render(v=f'{SCRIPT} & "q"')
    assert "<script>" not in out
    assert out.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;q&#34;") == 2


def test_a_field_the_model_lacks_fails_the_render():
    """StrictUndefined: a misspelt field is an error, never an empty cell."""
    model = SimpleNamespace(dag_id="d")
    with pytest.raises(UndefinedError):
        html_environment().from_string("{{ report.dag_idd }}").render(report=model)
    with pytest.raises(UndefinedError):
        markdown_environment().from_string("{{ report.dag_idd }}").render(report=model)
