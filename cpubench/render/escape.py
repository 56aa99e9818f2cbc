"""The one module that makes text from data safe for the place it lands: a Markdown table cell or line, an HTML
attribute, a YAML front-matter value, a plot's label, a terminal line, a CSV cell.

Why one module: results folders travel (people mail them, publish the pages built from them, merge folders others
sent), so every string a record or a host record holds (a model, a failure reason, a CPU brand, a setting, an
execution mode, a warning) is untrusted. Each renderer used to paste it raw into Markdown, HTML attributes, Jekyll
front matter and Liquid, so a folder someone sent could run script in a published site or read files through Liquid
(``{% include %}``). Escaping at each call site drifts; one function per destination, used everywhere, does not.

What each function guarantees (and, for ordinary text, what it leaves alone: a model, a setting, a CPU brand or a
note made of letters, digits, spaces and ``._-:;,()%/~*!^[]=>`` comes out byte for byte as it went in, so reports of
ordinary data read as they always did):

- :func:`md_text` / :func:`md_cell`: one line of Markdown (kramdown and GitHub's) that shows the text literally:
  no HTML (``<`` and ``&`` become entities), no code span (backticks escaped), no link or image (``](`` and ``][``
  broken), no kramdown attribute list or extension (``{`` ``}`` become entities), no math (``$`` escaped), no table
  cell break (``|`` escaped), no new block (newlines and runs of white space become one space).
- Liquid (Jekyll renders every page with front matter through Liquid before Markdown): data can never hold ``{{`` or
  ``{%`` once it went through any function here, because ``{`` and ``}`` become ``&#123;`` and ``&#125;``, which
  Liquid does not read and the browser shows as braces. That is why the generated pages need no ``{% raw %}`` block
  (which data could otherwise close with ``{% endraw %}``).
- :func:`html_attr` / :func:`html_text`: HTML-escaped, quotes included, braces as entities.
- :func:`yaml_string`: a double-quoted YAML scalar (control characters escaped), so a ``---`` or a newline in data
  cannot end the front matter; :func:`front_matter_title` also HTML-escapes, because the layouts print
  ``{{ page.title }}`` into the page unescaped.
- :func:`plot_text`: matplotlib text without mathtext (``$`` escaped: ``$x$`` in a label is shown, never parsed, and
  a broken formula cannot stop the drawing), one line, at most :data:`PLOT_TEXT_MAX` characters.
- :func:`plain`: a terminal line: ANSI escape sequences removed, other control characters shown as ``\\uXXXX``.
- :func:`csv_cell`: a CSV cell a spreadsheet opens as text: a string from data that starts like a formula (``=``,
  ``+``, ``-``, ``@``, a tab or carriage return, or their full-width forms) gets a leading ``'``, the mitigation
  OWASP gives for CSV injection, so ``=HYPERLINK(...)`` or a DDE call in a failure reason is shown, never run.
  Numbers are left as they are (a negative figure is a number, not a formula); the CSV module does the quoting.

Everywhere, control characters and the Unicode bidirectional overrides (U+202E...) that can make text read in
another order than it is stored are shown as ``\\uXXXX``: the reader sees what the data holds.
"""

from __future__ import annotations

import html
import re

MISSING = "\u2014"  # em dash: a run never made (a table cell with no value)
PLOT_TEXT_MAX = 200

# ANSI escape sequences: CSI (colours, cursor moves), OSC (window titles, hyperlinks) and the two-byte ones.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
# Control characters (but tab, newline and carriage return, which become spaces) and the characters that change
# the direction text is shown in (marks, embeddings, overrides, isolates).
_HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

_MARKDOWN = {"\\": "\\\\", "&": "&amp;", "<": "&lt;", "{": "&#123;", "}": "&#125;", "`": "\\`", "|": "\\|",
             "$": "\\$"}  # fmt: skip
_MARKDOWN_RE = re.compile(r"[\\&<{}`|$]")
# A closing bracket followed by ``(`` or ``[`` (with white space between, for kramdown's reference links) is what
# makes a link or an image of bracketed text: escaping the opener leaves the text and breaks the link.
_LINK = re.compile(r"\]([ \t]*)([(\[])")


def _visible(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def neutral(text: object) -> str:
    """``text`` as a string with ANSI sequences removed and hidden characters shown as ``\\uXXXX``."""
    return _HIDDEN.sub(_visible, _ANSI.sub("", str(text)))


def one_line(text: object) -> str:
    """:func:`neutral`, with every run of white space (newlines included) one space, trimmed."""
    return " ".join(neutral(text).split())


def md_text(text: object) -> str:
    """Text from data inside a Markdown line (a heading, a note, a list item): shown literally, one line."""
    escaped = _MARKDOWN_RE.sub(lambda m: _MARKDOWN[m.group()], one_line(text))
    return _LINK.sub(r"]\1\\\2", escaped)


def md_cell(cell: object) -> str:
    """A Markdown pipe-table cell: :func:`md_text`, and :data:`MISSING` for None (a run never made)."""
    return MISSING if cell is None else md_text(cell)


def html_text(text: object) -> str:
    """Text from data inside HTML (an element's text or a double- or single-quoted attribute), one line."""
    return html.escape(one_line(text), quote=True).replace("{", "&#123;").replace("}", "&#125;")


def html_attr(text: object) -> str:
    """An HTML attribute value (to be put between double quotes): see :func:`html_text`."""
    return html_text(text)


def yaml_string(text: object) -> str:
    """A YAML double-quoted scalar holding ``text`` exactly: backslashes, quotes and control characters escaped."""
    out = []
    for ch in str(text):
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif _HIDDEN.fullmatch(ch) or ch in "\r\u2028\u2029\ufeff":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def front_matter_title(text: object) -> str:
    """The ``title:`` value of a page's front matter: HTML-escaped (the layouts print it unescaped), then quoted."""
    return yaml_string(html_text(text))


def plot_text(text: object) -> str:
    """A plot title, axis or tick label or legend entry: one line, ``$`` escaped so mathtext never parses data."""
    line = one_line(text)
    if len(line) > PLOT_TEXT_MAX:
        line = line[: PLOT_TEXT_MAX - 1] + "\u2026"
    return line.replace("$", "\\$")


# What a spreadsheet reads as the start of a formula in a cell (LibreOffice and Excel also take the full-width
# forms), and what it may strip before looking (tab, carriage return).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: object) -> object:
    """A cell of a CSV file people open in a spreadsheet: a string that would start a formula is prefixed with
    ``'``, and control characters are shown as everywhere (:func:`neutral`); anything else (numbers, None,
    ordinary text) is returned as it is."""
    if not isinstance(value, str):
        return value
    value = neutral(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def plain(text: object) -> str:
    """A line of terminal text (``cpubench compare``, warnings on stderr): no escape sequence reaches the terminal."""
    return one_line(text)
