"""The header fast paths must say exactly what the modern header registry says, or stand aside.

Differential: each generated message is parsed twice, with the fast paths and with them switched
off (so every header goes through ``email.headerregistry``), and the results must be equal.
"""

from __future__ import annotations

import random
from dataclasses import asdict

import pytest

import futurnal.parse.headers as headers_module
from futurnal.parse.parser import parse_message
from futurnal.parse.simple_headers import simple_addresses, simple_params

NAMES = ["Alice", "Alice Example", "=?utf-8?q?=C3=89milie?= Dubois", "X =?UTF-8?B?w4k=?=", '"Example, Alice"',
         "=?utf-8?q?a?= =?iso-8859-1?q?=E9?=", '" spaced  out "', "O'Brien", '""', '"quoted"', "A.B.",
         "=?utf-8?b?w4?=", "=?x-unknown?q?a?=", "=?utf-8?q?=FF?=", "a=?utf-8?q?a?=", "=?utf-8*en?q?a?=",
         '"Al \\"A\\""', "Ünï Côde", "=?utf-8?q?Caf=C3=A9?=", "(note)", "", "Mr. X", "a@b"]
LOCALS = ["alice", "a.b", "a+tag", "ALICE", "x_y", "a'b", "A=B", "a..b", ".a", '"quoted local"', "é"]
DOMAINS = ["example.org", "Example.ORG", "localhost", "ex_ample.org", "-x.org", "x--y.org", "a1.b2", "[1.2.3.4]",
           "a.b.", "b..c"]
SEPARATORS = [",", ", ", " , ", ",  ", " ,", ",\t", ";"]
TYPES = ["text/plain", "TEXT/Plain", "multipart/mixed", "application/octet-stream", "attachment", "inline",
         "Attachment", "text", "text/plain/x", "", "text/ plain"]
PARAM_NAMES = ["charset", "CHARSET", "name", "boundary", "format", "filename", "x-y", "name*", "name*0", "file name"]
PARAM_VALUES = ["utf-8", '"utf-8"', '"a b"', '"a;b"', '""', '"doc.pdf"', "doc.pdf", "a=b", '"=?utf-8?q?x?="',
                '"a\\"b"', "é", " x", "=_boundary_1", '"=_b"', "a/b", '"x"y', '"(c)"', '" lead"']
PARAM_SEPARATORS = ["; ", ";", " ; ", ";  ", " ;", "; \t", ";;"]


def plain(rng: random.Random, pool: list[str]) -> str:
    """Half the time from the head of the pool (shapes the fast paths take), else from all of it."""
    return rng.choice(pool[:6] if rng.random() < 0.5 else pool)


def mailbox(rng: random.Random) -> str:
    address = f"{plain(rng, LOCALS)}@{plain(rng, DOMAINS)}"
    form = rng.randrange(5)
    if form == 0:
        return address
    if form == 1:
        return f"<{address}>"
    if form == 2:
        return f"{plain(rng, NAMES)}{rng.choice(['', ' ', '  '])}<{address}>"
    if form == 3:
        return f"{address} ({rng.choice(NAMES)})"
    return f"{plain(rng, NAMES)} <{address}>"


def address_list(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return f"Team: {mailbox(rng)}, {mailbox(rng)};"
    items = [mailbox(rng) for _ in range(rng.choice((1, 1, 2, 3)))]
    text = items[0]
    for item in items[1:]:
        text += plain(rng, SEPARATORS) + item
    return rng.choice(["", " "]) + text + rng.choice(["", " ", ","])


def parameterised(rng: random.Random) -> str:
    text = plain(rng, TYPES)
    for _ in range(rng.randrange(4)):
        text += f"{plain(rng, PARAM_SEPARATORS)}{plain(rng, PARAM_NAMES)}={plain(rng, PARAM_VALUES)}"
    return text + rng.choice(["", ";", " "])


def message(rng: random.Random) -> bytes:
    headers = [f"{name}: {address_list(rng)}" for name in ("From", "To", "Cc", "Reply-To") if rng.random() < 0.8]
    headers.append(f"Content-Type: {parameterised(rng)}")
    headers.append(f"Content-Disposition: {parameterised(rng)}")
    return ("\r\n".join(headers) + "\r\n\r\nHello.\r\n").encode("utf-8")


def test_fast_paths_give_what_the_header_registry_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1234)
    messages = [message(rng) for _ in range(3000)]
    fast = [asdict(parse_message(raw)) for raw in messages]
    monkeypatch.setattr(headers_module, "simple_addresses", lambda text: None)
    monkeypatch.setattr(headers_module, "simple_params", lambda name, text: None)
    slow = [asdict(parse_message(raw)) for raw in messages]
    differing = [(raw, f, s) for raw, f, s in zip(messages, fast, slow) if f != s]
    assert not differing, differing[:3]


def test_fast_paths_take_the_plain_shapes_and_leave_the_rest() -> None:
    assert simple_addresses('Alice <alice@example.org>, "Doe, Bob" <bob@x.org>, carol@y.org') == [
        ("Alice", "alice", "example.org"), ("Doe, Bob", "bob", "x.org"), ("", "carol", "y.org")
    ]
    assert simple_params("content-type", 'text/plain; charset="utf-8"; format=flowed') == (
        "text/plain", {"charset": "utf-8", "format": "flowed"}
    )
    assert simple_params("content-disposition", 'attachment; filename="a b.pdf"') == (
        "attachment", {"filename": "a b.pdf"}
    )
    assert simple_addresses("=?utf-8?q?J=C3=BCrgen?= Meyer <j@x.org>") == [("Jürgen Meyer", "j", "x.org")]
    for left_alone in ("=?utf-8?b?w4?= <a@b.org>", "=?utf-8?q?a?=<a@b.org>", "a@b.org (Al)", "Team: a@b.org;", "<a@b.org>",
                       '"a b"@c.org', "a@[1.2.3.4]"):
        assert simple_addresses(left_alone) is None, left_alone
    for left_alone in ("text", "text/plain; name*=utf-8''x", 'text/plain; name="=?utf-8?q?x?="', "text/plain; a"):
        assert simple_params("content-type", left_alone) is None, left_alone
