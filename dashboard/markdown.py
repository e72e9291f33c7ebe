"""Untrusted text shown as text: a value from the URL (``?study=``, ``?subject=``) or from an
imported file (study id and title, sponsor, site names, countries, AE terms, criterion text, file
names) goes into Streamlit's Markdown (``st.markdown``, captions, titles, alerts, widget, option and
metric labels, metric values) only through ``plain``.

Streamlit's Markdown is CommonMark with GitHub's extensions (links, images, tables, strikethrough,
autolinked ``www.``, ``https://`` and e-mail text), ``$`` LaTeX, ``:colour[...]`` directives,
``:emoji:`` shortcodes and ``:material/icon:`` icons. No streamlit here: text in, text out, so the
views and the pages share it.
"""

import re

# The characters that open a Markdown construct anywhere in a line, backslash-escaped (CommonMark:
# an escaped ASCII punctuation character is always its literal self). Others ('-', '.', '/', '(')
# are left as they are, so ordinary text reads the same in the page source and in tests.
_ANYWHERE = re.compile(r"([\\`*_\[\]<>&#|~$!{}])")
# Constructs that open only at the start of a block, where the value may stand: a list item ("- ",
# "+ ", "1. ", "1) ", the marker followed by a space) or a thematic break ("---"); a quote ('>')
# and a heading ('#') are escaped above. So "-1.5" and "58.6" stay as they are.
_LINE_START = re.compile(r"^(\d{1,9})([.)])(?=\s|$)|^([-+])(?=\s|$|-)")
# Autolinks, emoji and icon codes are found in the text after escapes are undone (GitHub's autolink
# literals, Streamlit's shortcodes), so no escape stops them: a word joiner (U+2060: invisible, no
# width, not a space) after a ':' or '@' that is followed by more text, and inside 'www.', does.
JOINER = "\u2060"
_COLON_OR_AT = re.compile(r"([:@])(?=\S)")
_WWW = re.compile(r"(?i)(w)(ww\.)")
_LINE_BREAKS = re.compile(r"\s*[\r\n\u2028\u2029\x0b\x0c\x85]\s*")


def plain(text: object) -> str:
    """``text`` as Markdown that shows its characters as they are: no emphasis, link, image, HTML,
    heading, list, table, code, LaTeX, colour, emoji or icon. Line breaks and leading white space
    become nothing more than a space (the value is shown inline, in a sentence or a label)."""
    value = _LINE_BREAKS.sub(" ", str(text)).lstrip()
    value = _ANYWHERE.sub(r"\\\1", value)
    value = _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", value)
    value = _COLON_OR_AT.sub(r"\1" + JOINER, value)
    return _WWW.sub(r"\1" + JOINER + r"\2", value)


def shown(markdown: str) -> str:
    """What ``plain`` text reads as on screen (its escapes and joiners removed): for tests."""
    return re.sub(r"\\(.)", r"\1", markdown).replace(JOINER, "")
