"""Bytes of one attachment -> readable text. Runs inside the extraction child (see :mod:`.child`).

Each extractor may be slow or greedy on hostile input: that is why this code runs in a child
process under a wall-clock timeout and an address-space limit, never in the service itself. The
extractors still refuse what they can recognise as hostile cheaply (zip bombs, XML with DTDs), so
that such files fail fast instead of running into the limits.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Iterator
from typing import IO, cast
from xml.etree.ElementTree import Element, XMLPullParser

from futurnal.parse.html_text import html_to_text

__all__ = ["ExtractionRefused", "KINDS", "extract_text", "kind_of"]

#: What can be extracted; anything else is recorded as ``unsupported``.
KINDS = ("text", "html", "pdf", "docx", "xlsx", "pptx")

_OOXML = "application/vnd.openxmlformats-officedocument."
_TYPES = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    _OOXML + "wordprocessingml.document": "docx",
    _OOXML + "spreadsheetml.sheet": "xlsx",
    _OOXML + "presentationml.presentation": "pptx",
}
_EXTENSIONS = {".pdf": "pdf", ".docx": "docx", ".xlsx": "xlsx", ".pptx": "pptx", ".txt": "text",
               ".htm": "html", ".html": "html"}
#: Senders label files generically; the file name then says what it is.
_GENERIC = ("application/octet-stream", "application/x-download", "binary/octet-stream")
_CHARSET_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "shift_jis": "cp932", "x-sjis": "cp932",
                    "ks_c_5601-1987": "cp949", "iso-8859-8-i": "iso-8859-8"}

#: Uncompressed bytes read from one Office file, all parts together: real documents' XML is a few
#: MB; a zip bomb's is gigabytes.
MAX_UNCOMPRESSED = 64 * 1024 * 1024
_MAX_PARTS = 2000
_CHUNK = 64 * 1024
_SLIDE = re.compile(r"ppt/slides/slide(\d+)\.xml")


class ExtractionRefused(Exception):
    """The file is recognisably hostile or broken; the attachment's status becomes ``failed``."""


def kind_of(content_type: str, filename: str | None) -> str | None:
    """The extractor for an attachment, from its type (or, for generic types, its name); None if none."""
    content_type = content_type.lower()
    if content_type in _TYPES:
        return _TYPES[content_type]
    if content_type.startswith("text/"):
        return "text"
    if content_type in _GENERIC and filename and "." in filename:
        return _EXTENSIONS.get(filename[filename.rfind("."):].lower())
    return None


def extract_text(data: bytes, kind: str, *, charset: str | None = None, max_chars: int = 1_000_000) -> str:
    """The text of ``data`` read as ``kind`` (one of :data:`KINDS`), cut at ``max_chars``.

    Raises:
        ExtractionRefused: hostile or unreadable input recognised as such.
        Exception: whatever the underlying library raises on input it cannot read.
    """
    if kind == "text":
        text = _decode(data, charset)
    elif kind == "html":
        text = html_to_text(_decode(data, charset))
    elif kind == "pdf":
        text = _pdf_text(data, max_chars)
    elif kind in ("docx", "xlsx", "pptx"):
        text = _ooxml_text(data, kind, max_chars)
    else:
        raise ExtractionRefused(f"no extractor for {kind!r}")
    return text[:max_chars]


def _decode(data: bytes, charset: str | None) -> str:
    """Declared charset, else UTF-8; undecodable bytes become U+FFFD rather than an error."""
    name = (charset or "").strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        if name and getattr(codecs.lookup(name), "_is_text_encoding", True):
            return _clean(data.decode(name, errors="replace"))
    except LookupError:
        pass
    return _clean(data.decode("utf-8", errors="replace"))


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub("[\x00-\x08\x0b-\x1f\x7f]", "", text)


def _pdf_text(data: bytes, max_chars: int) -> str:
    """PDFium's text of each page, in order, stopping once there is enough text.

    PDFium is Chrome's PDF engine (through pypdfium2): several times faster than a pure-Python
    reader on real documents and quick to give up on broken ones. It is C++, so a hostile file
    could crash it: that is one more reason it only ever runs here, in the child.
    """
    import pypdfium2 as pdfium  # imported here: the fork server imports it once (child.warm_up)
    import pypdfium2.raw as pdfium_c

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise ExtractionRefused("encrypted PDF") from None
        raise
    pages: list[str] = []
    length = 0
    with document:  # closing it also closes whatever page an error left open
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            text = textpage.get_text_range().strip()
            textpage.close()  # each page's memory goes before the next page's
            page.close()
            pages.append(text)
            length += len(text)
            if length >= max_chars:
                break
    return _clean("\n\n".join(pages).strip())


def _ooxml_parts(names: list[str], kind: str) -> list[str]:
    if kind == "docx":
        return [n for n in names if n == "word/document.xml"]
    if kind == "xlsx":
        return [n for n in names if n == "xl/sharedStrings.xml"]
    slides = [(int(m.group(1)), n) for n in names if (m := _SLIDE.fullmatch(n))]
    return [n for _, n in sorted(slides)]


def _ooxml_text(data: bytes, kind: str, max_chars: int) -> str:
    """Text runs of an Office Open XML file, read with zipfile and a streaming XML parser.

    The uncompressed bytes read are counted against :data:`MAX_UNCOMPRESSED` as they are read
    (the sizes in the zip directory are the sender's claim, so they are checked but not trusted).
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ExtractionRefused(f"not a zip file: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > _MAX_PARTS:
            raise ExtractionRefused("too many parts")
        parts = _ooxml_parts([info.filename for info in infos], kind)
        if not parts:
            raise ExtractionRefused(f"no text part for {kind}")
        budget = [MAX_UNCOMPRESSED]
        out: list[str] = []
        for name in parts:
            if archive.getinfo(name).file_size > budget[0]:
                raise ExtractionRefused("zip bomb: declared size over the limit")
            with archive.open(name) as stream:
                out.append("".join(_xml_text(_bounded(stream, budget))))
            if sum(map(len, out)) >= max_chars:
                break
    return _clean("\n\n".join(part.strip() for part in out if part.strip()))


def _bounded(stream: IO[bytes], budget: list[int]) -> Iterator[bytes]:
    """Chunks of ``stream``, raising once more than ``budget[0]`` bytes were read in total."""
    tail = b""
    while chunk := stream.read(_CHUNK):
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise ExtractionRefused("zip bomb: uncompressed size over the limit")
        window = tail + chunk
        if b"<!DOCTYPE" in window or b"<!ENTITY" in window:
            raise ExtractionRefused("XML with a DTD")  # Office never writes one; entity tricks do
        tail = chunk[-16:]
        yield chunk


def _xml_text(chunks: Iterator[bytes]) -> Iterator[str]:
    """``t`` elements' text; paragraph, row and shared-string ends become newlines."""
    parser: XMLPullParser[Element] = XMLPullParser(events=("end",))
    for chunk in chunks:
        parser.feed(chunk)
        for event in parser.read_events():
            _, element = cast("tuple[str, Element]", event)  # "end" events carry elements only
            local = element.tag.rpartition("}")[2]
            if local == "t" and element.text:
                yield element.text
            elif local == "tab":
                yield "\t"
            elif local in ("br", "cr"):
                yield "\n"
            elif local in ("p", "si"):
                yield "\n"
            if local in ("p", "si", "tbl"):
                element.clear()  # keep memory flat on long documents
    parser.close()
