"""``plain``: untrusted text (from the URL or an imported file) shown in Streamlit's Markdown as its
own characters. The hostile strings below are each a construct Streamlit's Markdown would render;
``tests/test_browser_plain_text.py`` checks in Chromium that none of them does."""

import re

import pytest

from dashboard.markdown import JOINER, plain, shown

HOSTILE = [
    "**Session expired** [sign in](https://example.org)",
    "![x](http://127.0.0.1:9/x.png)",
    "<img src=x onerror=alert(1)> <b>bold</b> <script>alert(1)</script>",
    "&amp; &lt;b&gt; &#60;",
    "_em_ *em* __strong__ ~~struck~~ `code` ``code``",
    "$x^2$ $$\\int$$",
    ":red[red] :blue-background[x] :material/home: :smile: :+1:",
    "www.example.org https://example.org http://x.y mailto:a@b.org a@b.org",
    "[ref]: https://example.org\n[ref]",
    "# heading",
    "> quote",
    "- item",
    "+ item",
    "* item",
    "1. item",
    "1) item",
    "=====",
    "---",
    "    indented code",
    "| a | b |\n|---|---|\n| c | d |",
    "line\n\nbreak\r\nand\rmore",
    "back\\slash \\*not escaped\\*",
    "[x]{#id} {curly}",
    "<https://example.org>",
    "[^1] footnote\n\n[^1]: note",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_escapes_every_construct(text: str) -> None:
    escaped = plain(text)
    # Every character that opens a construct anywhere is escaped (an odd number of backslashes).
    for char in "*_`[]<>&#|~$!{}":
        for match in re.finditer(re.escape(char), escaped):
            backslashes = len(escaped[: match.start()]) - len(escaped[: match.start()].rstrip("\\"))
            assert backslashes % 2 == 1, (char, escaped)
    # No line break (a new block), no leading block marker, no autolink or shortcode left whole.
    assert not re.search(r"[\r\n]", escaped)
    assert not re.match(r"\s|[-+](\s|$|-)|\d+[.)](\s|$)", escaped)
    assert not re.search(r"[:@](?!\u2060)\S", escaped)
    assert not re.search(r"(?i)www\.", escaped)


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_keeps_the_characters(text: str) -> None:
    """What shows is the text itself: line breaks as spaces, leading white space dropped."""
    expected = re.sub(r"\s*[\r\n]+\s*", " ", text).lstrip()
    assert shown(plain(text)) == expected


def test_plain_leaves_ordinary_text_alone() -> None:
    for text in (
        "MSC-derived exosomes in knee osteoarthritis (phase 1/2)",
        "12 / 20",
        "Cut 2 · cut-off 03 Dec 2026",
        "DEMO-MULTI-101-0001",
        "St. Mary's Hospital, 50% of target; 3.5 a month",
        "Study: open label",
        "-1.5",  # a list item needs a space after its marker
        "58.6 (6.9)",
        "+3",
    ):
        assert plain(text) == text
    assert plain(20) == "20"
    assert plain("10:30") == f"10:{JOINER}30"  # a ':' before more text could end a shortcode
