"""Setting long bodies aside while the MIME structure is parsed must not change any parse result.

Differential: generated messages (nested multiparts, forwarded messages, delivery reports, lines
that look like boundaries, headers or envelope lines, missing and broken boundaries, CRLF and LF)
are parsed with and without :func:`futurnal.parse.body_runs.shrink`, and must come out equal.
"""

from __future__ import annotations

import random
from dataclasses import asdict

import pytest

import futurnal.parse.parser as parser_module
from futurnal.parse.body_runs import restore, shrink
from futurnal.parse.parser import parse_message

from .random_mime import random_message


def test_parse_results_are_the_same_with_and_without_setting_runs_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(77)
    messages = [random_message(rng) for _ in range(1500)]
    assert sum(1 for raw in messages if shrink(raw)[1]) > 300, "the generator must produce runs to set aside"
    monkeypatch.setattr(parser_module, "parse_clean", lambda data: None)  # every message takes the stdlib path
    fast = [asdict(parse_message(raw)) for raw in messages]
    monkeypatch.setattr(parser_module, "shrink", lambda data: (data, {}))
    slow = [asdict(parse_message(raw)) for raw in messages]
    differing = [raw for raw, f, s in zip(messages, fast, slow) if f != s]
    assert not differing, differing[:2]


def test_a_placeholder_that_the_parser_lost_is_reported() -> None:
    from email.message import Message

    assert restore(Message(), {"FUTURNALBODYRUN0Z": "text"}) is False


def test_messages_holding_the_placeholder_word_or_odd_line_breaks_are_left_alone() -> None:
    long_body = b"words\r\n" * 200
    assert shrink(b"Subject: x\r\n\r\nFUTURNALBODYRUN0Z\r\n\r\n" + long_body)[1] == {}
    assert shrink(b"Subject: x\r\n\r\n" + long_body + b"a\rb\r\n")[1] == {}
    assert shrink(b"Subject: x\r\n\r\n" + long_body + b"a\r")[1] == {}  # a CR ending the message
    assert shrink(b"Subject: x\r\n\r\n" + long_body)[1] != {}
