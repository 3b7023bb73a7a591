"""The boundary-search parser must build exactly the stdlib parser's tree, or step aside.

Differential: every message of several corpora is parsed by :func:`parse_clean` and by
``BytesParser(policy=compat32)``; where the fast path answers, the two trees (raw headers,
payload strings, preambles, epilogues, defects, default types) must be equal.
"""

from __future__ import annotations

import random
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from typing import Any

import pytest

from futurnal.demo.bad_input import bad_input_corpus
from futurnal.demo.sample_mailbox import generate_mailbox
from futurnal.parse.clean_mime import parse_clean

from .random_mime import random_message


def tree(msg: Message) -> tuple[Any, ...]:
    payload = msg._payload
    return (
        msg._headers, msg._unixfrom, msg._default_type, [type(d).__name__ for d in msg.defects],
        getattr(msg, "preamble", None), getattr(msg, "epilogue", None),
        [tree(part) for part in payload] if isinstance(payload, list) else payload,
    )


def stdlib_tree(raw: bytes) -> tuple[Any, ...]:
    return tree(BytesParser(policy=compat32).parsebytes(raw))


def corpus() -> list[bytes]:
    rng = random.Random(2026)
    messages = [random_message(rng) for _ in range(2500)]
    messages += [m.raw for m in generate_mailbox(300, seed=8)]
    messages += [m.raw for m in bad_input_corpus()]
    return messages


def test_where_the_fast_path_answers_it_builds_the_stdlib_tree() -> None:
    answered = fell_back = 0
    differing = []
    for raw in corpus():
        fast = parse_clean(raw)
        if fast is None:
            fell_back += 1
            continue
        answered += 1
        if tree(fast) != stdlib_tree(raw):
            differing.append(raw)
    assert not differing, differing[:2]
    assert answered > 800 and fell_back > 800, (answered, fell_back)  # both paths were exercised


MULTIPART = (
    b'From: a@example.org\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
    b"preamble line\r\n\r\n"
    b"--outer\r\nContent-Type: text/plain\r\n\r\nfirst\r\n\r\n"
    b'--outer  \r\nContent-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    b"--inner\r\n\r\nplain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--inner--\r\ninner epilogue\r\n"
    b"\r\n--outer--\r\nepilogue\r\n"
)


@pytest.mark.parametrize("raw", [
    MULTIPART,
    MULTIPART.replace(b"\r\n", b"\n"),
    MULTIPART[: MULTIPART.rindex(b"epilogue")] .rstrip(b"\r\n"),  # the closing line ends the message
    MULTIPART.replace(b"--inner--\r\ninner epilogue\r\n", b"--inner--\r\n"),  # an empty inner epilogue
    MULTIPART.replace(b"preamble line\r\n\r\n", b""),  # no preamble
    MULTIPART.replace(b"From: a@example.org\r\n", b"Content-Transfer-Encoding: base64\r\n"),  # a defect
    b"Subject: plain\r\nX-Long: one\r\n two\r\n\r\nbody \xff\xfe bytes\r\n",
    b"Subject: no body\r\n\r\n",
    MULTIPART.replace(b"first\r\n", b"page\x0cbreak\x0b\x1c\r\n"),  # not line breaks for the stdlib parser
], ids=["crlf", "lf", "no-final-newline", "empty-inner-epilogue", "no-preamble", "bad-cte", "plain", "empty-body",
        "form-feed"])
def test_well_formed_messages_take_the_fast_path_and_match(raw: bytes) -> None:
    fast = parse_clean(raw)
    assert fast is not None
    assert tree(fast) == stdlib_tree(raw)


@pytest.mark.parametrize("raw", [
    MULTIPART.replace(b"first\r\n", b"fi\rrst\r\n"),  # a bare CR: the stdlib splits lines there
    MULTIPART.replace(b"--outer--\r\n", b""),  # never closed
    MULTIPART.replace(b"--outer\r\nContent-Type: text/plain", b"--outer\r\n--outer\r\nContent-Type: text/plain"),
    MULTIPART.replace(b'boundary="outer"', b'boundary="elsewhere"'),  # never opened
    MULTIPART.replace(b'; boundary="outer"', b""),  # no boundary at all
    b"Subject: x\r\nnot a header line\r\n\r\nbody\r\n",
    b"From someone Mon Jan  1 00:00:00 2024\r\nSubject: x\r\n\r\nbody\r\n",
    b" continuation first\r\nSubject: x\r\n\r\nbody\r\n",
    b"Subject: headers only, no separator\r\n",
    b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n",
    b'Content-Type: multipart/digest; boundary="d"\r\n\r\n--d\r\n\r\nSubject: x\r\n\r\nbody\r\n--d--\r\n',
    # The stdlib's RFC 2231 decoding raises TypeError on these parameters; its path records the defect.
    b"Content-Type: multipart/mixed; name*=\"\"; name*0=utf-8; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
    b"Content-Type: multipart/mixed; boundary*=us-ascii''a%0Ab\n\n--a\nb\n\nhi\n--a\nb--\n",  # a line break
    b'Content-Type: multipart/mixed;\r\n boundary="a\r\n b"\r\n\r\n--a\r\n b\r\n\r\nhi\r\n--a\r\n b--\r\n',
], ids=["bare-cr", "unclosed", "double-boundary", "never-opened", "no-boundary", "not-a-header", "envelope",
        "leading-continuation", "no-separator", "message-part", "digest", "stdlib-raises",
        "boundary-with-lf", "folded-boundary"])
def test_anything_irregular_is_left_to_the_stdlib_parser(raw: bytes) -> None:
    assert parse_clean(raw) is None


def test_linear_parameter_split_gives_the_stdlib_answers() -> None:
    from email.message import _parseparam  # the quadratic original

    from futurnal.parse.clean_mime import split_params

    rng = random.Random(2231)
    pieces = [";", '"', "\\", "\\\"", "=", " ", "\t", "*", "'", "a", "B", "%"]
    values = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 20))) for _ in range(20000)]
    values += ['text/plain; charset="a;b"; name=x', 'a; b="\\";"; c=d', "x;;;", ""]
    assert [v for v in values if split_params(v) != _parseparam(v)] == []
    assert split_params("a; b=1; c=2; d=3", limit=2) == ["a", "b=1"]


def test_linear_messages_read_the_parameters_the_stdlib_reads() -> None:
    from futurnal.parse.clean_mime import LinearMessage

    for value in ['multipart/mixed; boundary="b;c"; x*0*=utf-8\'\'%C3%A9; x*1*=t', "text/plain;;charset=utf-8"]:
        ours, theirs = LinearMessage(), Message()
        ours["Content-Type"] = theirs["Content-Type"] = value
        assert ours.get_params() == theirs.get_params()
        assert (ours.get_boundary(), ours.get_param("x")) == (theirs.get_boundary(), theirs.get_param("x"))
