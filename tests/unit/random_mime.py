"""Random MIME messages for differential parser tests: nested multiparts, forwarded messages,
delivery reports, lines that look like boundaries, headers or envelope lines, missing and broken
boundaries, missing header separators, CRLF and LF."""

from __future__ import annotations

import base64
import random

__all__ = ["random_message"]

LINES = ["Hello Alice,", "", "Note: the meeting moved to 10:30.", "-- ", "--not-a-boundary", "From the desk of Bob",
         " indented line", "\tindented", "plain words and more words", "x" * 120, "Subject: looks like a header",
         "=?utf-8?q?caf=C3=A9?=", "Grüße", "-----BEGIN PGP SIGNED MESSAGE-----", ".", "a: b"]
TYPES = ["text/plain", "text/html", "application/pdf", "message/rfc822", "multipart/mixed",
         "multipart/alternative", "message/delivery-status", "text/csv"]


def body(rng: random.Random) -> list[str]:
    if rng.random() < 0.3:
        payload = base64.encodebytes(rng.randbytes(rng.randrange(100, 6000))).decode().splitlines()
        return payload
    return [rng.choice(LINES) for _ in range(rng.randrange(0, 120))]


def part(rng: random.Random, depth: int, boundary_id: list[int]) -> list[str]:
    kind = rng.choice(TYPES) if depth < 3 else rng.choice(TYPES[:3])
    headers = []
    if rng.random() < 0.9:
        headers.append(f"Content-Type: {kind}")
    if rng.random() < 0.3:
        headers.append("Content-Transfer-Encoding: base64")
    if rng.random() < 0.2:
        headers.append('Content-Disposition: attachment; filename="f.bin"')
    blank = [""] if rng.random() < 0.95 else []  # sometimes no separator: the body starts at once
    if kind.startswith("multipart/"):
        boundary_id[0] += 1
        boundary = f"b{boundary_id[0]}"
        if rng.random() < 0.9:
            headers[-1:] = [f'Content-Type: {kind}; boundary="{boundary}"'] if headers else []
        lines = headers + blank + body(rng)[:5]
        for _ in range(rng.randrange(0, 4)):
            lines.append(f"--{boundary}" + rng.choice(["", "", " ", "x"]))
            lines += part(rng, depth + 1, boundary_id)
        if rng.random() < 0.85:
            lines.append(f"--{boundary}--")
        return lines + body(rng)[:5]
    if kind == "message/rfc822":
        return headers + blank + ["From: x@example.org", "Subject: inner"] + part(rng, depth + 1, boundary_id)
    if kind == "message/delivery-status":
        return headers + blank + ["Reporting-MTA: dns; x", "", "Final-Recipient: rfc822; a@b", "Status: 5.0.0"] + body(rng)
    return headers + blank + body(rng)


def random_message(rng: random.Random) -> bytes:
    lines = ["From: Alice <alice@example.org>", "Subject: test", "MIME-Version: 1.0"] + part(rng, 0, [0])
    text = rng.choice(["\r\n", "\n"]).join(lines) + rng.choice(["\r\n", "\n", ""])
    return text.encode("utf-8")
