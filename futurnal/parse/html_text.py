"""Reduce the HTML of an e-mail to readable plain text.

Mail HTML is written for rendering, not for reading as source: layout tables,
tracking pixels, inline CSS, invisible "preheader" characters. The knowledge
pipeline wants the words a person would see, plus where links point, so this
module keeps text and link targets and throws the rest away. Standard library
only; it never raises for any input string.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

#: Elements whose content is never shown to a reader of the mail.
_SKIP = frozenset({"script", "style", "template", "title", "xml"})

#: Elements that start a new paragraph (a blank line before and after).
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl"}
    | {"hr", "figure", "address", "fieldset"}
)

#: Elements that start a new line.
_LINE = frozenset(
    {"div", "li", "tr", "dt", "dd", "section", "article", "header", "footer", "main", "nav"}
    | {"aside", "form", "center", "caption", "figcaption", "details", "summary", "body", "html"}
    | {"tbody", "thead", "tfoot"}
)

#: Table cells are separated by a space so adjacent cells do not run together.
_CELL = frozenset({"td", "th"})

#: Link targets that say nothing about where the link leads.
_USELESS_HREF = re.compile(r"^\s*(#|javascript:|data:|$)", re.IGNORECASE)

#: Invisible characters that mail templates use for padding and tracking.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u034f\u00ad"), None)

_SPACES = re.compile(r"[ \t\r\n\f\v\xa0]+")


class _Reducer(HTMLParser):
    """Collect the visible text of a document line by line.

    Lines are built incrementally instead of post-processing one big string so
    that whitespace inside ``<pre>`` survives while everything else collapses.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0
        # Open links: (href, collected link text); a stack because mail HTML nests badly.
        self.links: list[tuple[str | None, list[str]]] = []

    # -- output helpers -------------------------------------------------
    def _write(self, text: str) -> None:
        if not text:
            return
        if self.pre_depth:
            first, *rest = text.split("\n")
            self.current.append(first)
            for line in rest:
                self._end_line()
                self.current.append(line)
        else:
            text = _SPACES.sub(" ", text)
            if text.startswith(" ") and (not self.current or self.current[-1].endswith(" ")):
                text = text[1:]
            self.current.append(text)
        for _, collected in self.links:
            collected.append(text)

    def _end_line(self) -> None:
        self.lines.append("".join(self.current).rstrip())
        self.current = []

    def _break(self, blank: bool) -> None:
        """End the current line; with *blank*, also make sure a blank line follows."""
        if "".join(self.current).strip() or self.pre_depth:
            self._end_line()
        else:
            self.current = []
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")

    def _close_link(self) -> None:
        href, collected = self.links.pop()
        if href is None or _USELESS_HREF.match(href):
            return
        href = href.strip()
        shown = " ".join("".join(collected).split())
        target = href[7:] if href.lower().startswith("mailto:") else href
        if target and target not in shown:
            self._write(f" ({href})")

    # -- HTMLParser callbacks --------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
            return
        if self.skip_depth:
            return
        if tag == "br":
            self._break(blank=False)
        elif tag in _PARAGRAPH:
            self._break(blank=True)
            if tag == "pre":
                self.pre_depth += 1
        elif tag in _LINE:
            self._break(blank=False)
            if tag == "li":
                self._write("- ")
        elif tag in _CELL:
            self._write(" ")
        elif tag == "a":
            if self.links:  # an <a> is never inside another; close the unclosed one
                self._close_link()
            self.links.append((dict(attrs).get("href"), []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":  # <a href=".."/> has no text; nothing to keep
            return
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
            return
        if self.skip_depth:
            return
        if tag in _PARAGRAPH:
            if tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)
            self._break(blank=True)
        elif tag in _LINE:
            self._break(blank=False)
        elif tag == "a" and self.links:
            self._close_link()

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self._write(data.translate(_INVISIBLE))

    def result(self) -> str:
        while self.links:
            self._close_link()
        self._break(blank=False)
        return _tidy("\n".join(self.lines))


def _tidy(text: str) -> str:
    """Strip line ends and squeeze runs of blank lines into one."""
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n").rstrip()


_FALLBACK_DROP = re.compile(r"<(script|style|title|template)\b.*?(</\1\s*>|\Z)", re.I | re.S)
_FALLBACK_BLOCK = re.compile(r"<\s*/?\s*(br|p|div|li|tr|h[1-6]|table|blockquote|pre|hr)\b[^>]*>", re.I)
_FALLBACK_TAG = re.compile(r"<[^>]*>")


def _fallback(markup: str) -> str:
    """Cruder reduction for markup that trips up :class:`HTMLParser`."""
    text = _FALLBACK_DROP.sub(" ", markup)
    text = re.sub(r"<!--.*?(-->|\Z)", " ", text, flags=re.S)
    text = _FALLBACK_BLOCK.sub("\n", text)
    text = html.unescape(_FALLBACK_TAG.sub(" ", text)).translate(_INVISIBLE)
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return _tidy("\n".join(lines))


def html_to_text(html_source: str) -> str:
    """Reduce an HTML document or fragment to readable plain text.

    Script and style content is dropped, entities are decoded, link text is
    kept with the URL in parentheses after it (unless the text already shows
    the URL), block elements become line breaks and other whitespace
    collapses. The standard :class:`HTMLParser` copes with almost anything;
    the few inputs that make it fail fall back to a regex reduction so callers
    never see an exception.

    Args:
        html_source: The HTML as text (already decoded from its charset).

    Returns:
        The readable text, without leading or trailing blank lines.
    """
    if not html_source:
        return ""
    reducer = _Reducer()
    try:
        reducer.feed(html_source)
        reducer.close()
        return reducer.result()
    except Exception:  # HTMLParser bugs (e.g. unknown "<![foo[" sections) must not escape
        return _fallback(html_source)
