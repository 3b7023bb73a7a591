"""Untrusted bytes and strings to clean text: MIME charsets, undecodable bytes, control characters.

Both header decoding (:mod:`.headers`) and the MIME walk (:mod:`.mime_walk`) read text this way.
A charset that cannot be read is recorded as a defect (``unknown-charset:<name>``,
``charset-mismatch:<name>``) and the text read as well as it can be, never raised.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["SURROGATES", "clean_text", "codec_for", "decode_bytes", "fix_surrogates", "one_line"]

#: Lone surrogates: what ``surrogateescape`` makes of the bytes it could not decode.
SURROGATES = re.compile("[\ud800-\udfff]")
_LINE_CONTROLS = re.compile("[\x00-\x1f\x7f]")
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_TEXT_CONTROL_BYTES = bytes(range(0x00, 0x09)) + bytes(range(0x0B, 0x20)) + b"\x7f"

#: MIME charset names Python does not know, or knows a narrower version of.
_CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "",
}


def fix_surrogates(text: str) -> str:
    """Turn surrogate escapes (undecodable bytes) into real text or U+FFFD; JSON needs valid Unicode."""
    if not SURROGATES.search(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return SURROGATES.sub("\ufffd", text)


def one_line(text: str | None) -> str:
    """Single-line field: valid Unicode, no control characters, whitespace collapsed."""
    if not text:
        return ""
    return " ".join(_LINE_CONTROLS.sub(" ", fix_surrogates(text)).split())


def clean_text(text: str) -> str:
    """Multi-line text: newlines normalised to ``\\n``, other control characters dropped."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (undecodable bytes): the general, slower way
        text = fix_surrogates(text).replace("\r\n", "\n").replace("\r", "\n")
        return _TEXT_CONTROLS.sub("", text)
    # The same edits on UTF-8 bytes, several times faster than a regex over the text: ASCII control
    # characters are single bytes in UTF-8, never part of another character's encoding.
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").translate(None, _TEXT_CONTROL_BYTES)
    return data.decode("utf-8")


def _token(value: str) -> str:
    """Short, safe rendering of an untrusted value for use inside a defect string."""
    return re.sub(r"[^a-z0-9_.:+-]", "?", fix_surrogates(value).strip().lower())[:40]


def codec_for(charset: str | None, defects: set[str]) -> str | None:
    """Python codec for a MIME charset, or None (recording a defect) when unusable."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
        usable = getattr(info, "_is_text_encoding", True)  # False for base64, rot13, zlib...
    except Exception:  # LookupError, or ValueError/TypeError for names with NULs
        usable = False
    if not usable:
        defects.add(f"unknown-charset:{_token(charset)}")
        return None
    return name


def decode_bytes(data: bytes, charset: str | None, defects: set[str]) -> str:
    """Decode with the declared charset; fall back to UTF-8 (strict, then with replacement)."""
    codec = codec_for(charset, defects)
    if codec:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            defects.add(f"charset-mismatch:{_token(charset or '')}")
        except Exception:
            defects.add(f"unknown-charset:{_token(charset or '')}")
            codec = None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec:  # mislabelled but mostly right: keep what the declared charset can read
        try:
            return data.decode(codec, errors="replace")
        except Exception:
            pass
    return data.decode("utf-8", errors="replace")
