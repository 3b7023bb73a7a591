"""Small real attachment files, made in memory: PDFs, Office documents, and hostile ones.

Used by the demo-style corpus (:mod:`.bad_input`), the tests and the benchmark, so every one of
them exercises the real extractors on real file formats rather than stand-ins.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from xml.sax.saxutils import escape

__all__ = ["docx_bytes", "encrypted_pdf", "flate_bomb_pdf", "pdf_bytes", "spinning_pdf", "xlsx_bytes", "zip_bomb_docx"]


def _pdf(streams: list[bytes], *, compress: bool = False, deflated: bytes | None = None,
         lock: _Rc4Lock | None = None) -> bytes:
    """A valid PDF with one page per content stream (Helvetica), xref offsets computed.

    ``deflated``: one ready-made Flate stream that every page shows instead of ``streams`` (one
    object, so the file stays small however many pages there are). ``lock``: the streams are
    encrypted with it, and the trailer names it.
    """
    if deflated is not None:
        bodies = [(deflated, b" /Filter /FlateDecode")]
    else:
        bodies = [(zlib.compress(stream, 9) if compress else stream, b" /Filter /FlateDecode" if compress else b"")
                  for stream in streams]
    contents = []
    for number, (body, filters) in enumerate(bodies, start=4):
        if lock is not None:
            body = lock.seal(number, body)
        contents.append(b"<< /Length %d%s >>\nstream\n" % (len(body), filters) + body + b"\nendstream")
    first_page = 4 + len(contents)
    pages = len(streams)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(f"{first_page + i} 0 R".encode() for i in range(pages))
        + f"] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *contents,
    ]
    for index in range(pages):
        content_ref = 4 if deflated is not None else 4 + index
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {content_ref} 0 R >>".encode()
        )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    locked = lock.trailer() if lock is not None else b""
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R".encode() + locked
              + f" >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


#: The standard security handler's padding of passwords (PDF 1.7, 7.6.3.3).
_PASSWORD_PAD = bytes.fromhex("28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a")


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


class _Rc4Lock:
    """The PDF standard security handler, revision 2 (40-bit RC4): the simplest lock a reader
    must honour, enough to make a password-protected test file (PDF 1.7, 7.6.3.3-7.6.3.4)."""

    def __init__(self, user_password: str, owner_password: str = "owner") -> None:
        def padded(password: str) -> bytes:
            return (password.encode("latin-1") + _PASSWORD_PAD)[:32]

        self.file_id = bytes(range(16))
        self.permissions = -44  # everything allowed
        self.owner = _rc4(hashlib.md5(padded(owner_password)).digest()[:5], padded(user_password))
        self.key = hashlib.md5(padded(user_password) + self.owner + struct.pack("<i", self.permissions)
                               + self.file_id).digest()[:5]
        self.user = _rc4(self.key, _PASSWORD_PAD)

    def seal(self, number: int, data: bytes) -> bytes:
        """``data`` of object ``number`` (generation 0), encrypted."""
        return _rc4(hashlib.md5(self.key + number.to_bytes(3, "little") + b"\x00\x00").digest()[:10], data)

    def trailer(self) -> bytes:
        return (f" /Encrypt << /Filter /Standard /V 1 /R 2 /O <{self.owner.hex()}> /U <{self.user.hex()}>"
                f" /P {self.permissions} >> /ID [<{self.file_id.hex()}> <{self.file_id.hex()}>]").encode()


def _pdf_string(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1", "replace")


def pdf_bytes(*pages: str) -> bytes:
    """A PDF whose pages show these lines of (Latin-1) text."""
    return _pdf([_page_stream(page) for page in pages])


def _page_stream(page: str) -> bytes:
    lines = [b"BT /F1 12 Tf 72 720 Td 14 TL"]
    lines += [b"(" + _pdf_string(line) + b") Tj T*" for line in page.splitlines()]
    return b"\n".join(lines + [b"ET"])


def encrypted_pdf(*pages: str, user_password: str = "secret") -> bytes:
    """A PDF like :func:`pdf_bytes` locked with the standard security handler: readable without a
    password when ``user_password`` is empty (only an owner password), else not."""
    return _pdf([_page_stream(page) for page in pages], lock=_Rc4Lock(user_password))


def spinning_pdf(operators: int = 100_000, pages: int = 300) -> bytes:
    """A small PDF whose ``pages`` all show one content stream of ``operators`` text operators:
    reading its text keeps a PDF library busy, the way a hostile or machine-made PDF can. PDFium
    takes about 0.7 µs per operator and page (some 20 s at the defaults, far longer for a
    pure-Python reader), with memory for one page's operators at a time; one page of a million
    operators is a memory hog instead (about 350 MB)."""
    stream = b"BT /F1 1 Tf " + b"(x) Tj 0 0 Td " * operators + b"ET"
    return _pdf([b""] * pages, deflated=zlib.compress(stream, 9))


def flate_bomb_pdf(megabytes: int = 1024) -> bytes:
    """A PDF of about 1 MB whose content stream inflates to ``megabytes`` of spaces."""
    inflated = zlib.compressobj(9)
    chunk = b" " * (1024 * 1024)
    body = b"".join(inflated.compress(chunk) for _ in range(megabytes)) + inflated.flush()
    return _pdf([b""], deflated=body)

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/{part}" ContentType="{type}"/></Types>'
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def docx_bytes(*paragraphs: str) -> bytes:
    """A minimal Word document with these paragraphs."""
    body = "".join(f"<w:p><w:r><w:t xml:space=\"preserve\">{escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
    document = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{_W}"><w:body>{body}</w:body></w:document>'
    return _zip({
        "[Content_Types].xml": _CONTENT_TYPES.format(
            part="word/document.xml",
            type="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml").encode(),
        "word/document.xml": document.encode(),
    })


def xlsx_bytes(*cells: str) -> bytes:
    """A spreadsheet's shared strings (what holds a workbook's text) with these cells."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    items = "".join(f"<si><t>{escape(c)}</t></si>" for c in cells)
    return _zip({"xl/sharedStrings.xml": f'<sst xmlns="{ns}">{items}</sst>'.encode()})


def zip_bomb_docx(megabytes: int = 256) -> bytes:
    """A .docx of a few MB whose document.xml inflates to ``megabytes`` (a paragraph repeated)."""
    out = io.BytesIO()
    paragraph = f"<w:p><w:r><w:t>{'A' * 1000}</w:t></w:r></w:p>".encode()
    block = paragraph * 1024  # about 1 MB
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(f'<w:document xmlns:w="{_W}"><w:body>'.encode())
            for _ in range(megabytes):
                member.write(block)
            member.write(b"</w:body></w:document>")
    return out.getvalue()
