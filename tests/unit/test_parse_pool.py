"""The parser worker pool: same results as parsing in-process, in order, and bad messages contained."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from futurnal.demo.sample_mailbox import generate_mailbox
from futurnal.parse.parse_pool import ParseFailure, ParsePool, PoolUnavailable
from futurnal.parse.parser import parse_message
from futurnal.process.faults import PARSER_EXIT_ENV, PARSER_HANG_ENV


def note(marker: str, n: int) -> bytes:
    return f"From: x@example.org\r\nSubject: note {n}\r\nMessage-ID: <{n}@example.org>\r\n\r\n{marker}\r\n".encode()


@pytest.fixture
def pool() -> Iterator[ParsePool]:
    made = ParsePool(workers=2, timeout=2.0)
    try:
        yield made
    finally:
        made.close()


def test_the_pool_gives_what_parsing_in_process_gives_in_the_order_submitted(pool: ParsePool) -> None:
    raws = [m.raw for m in generate_mailbox(80, seed=3)]
    first = list(pool.submit(raws[:50]).outcomes())
    second = list(pool.submit(raws[50:]).outcomes())
    assert first + second == [parse_message(raw) for raw in raws]


def test_messages_go_to_the_worker_with_the_fewest_bytes_still_to_parse(pool: ParsePool) -> None:
    big = note("x" * 200_000, 0)
    smalls = [note("small", n) for n in range(1, 6)]
    batch = pool.submit([big, *smalls])
    assert sorted(pool.outstanding_bytes()) == sorted([len(big), sum(map(len, smalls))])
    assert list(batch.outcomes()) == [parse_message(raw) for raw in [big, *smalls]]
    assert pool.outstanding_bytes() == [0, 0]


def test_a_batch_abandoned_half_read_does_not_shift_the_next_batch(pool: ParsePool) -> None:
    raws = [note("text", n) for n in range(10)]
    abandoned = pool.submit(raws).outcomes()
    next(abandoned)
    later = [note("later", n) for n in range(100, 105)]
    assert list(pool.submit(later).outcomes()) == [parse_message(raw) for raw in later]


def test_a_message_that_kills_its_worker_fails_alone_and_the_pool_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PARSER_EXIT_ENV, "KILLS-THE-PARSER")
    pool = ParsePool(workers=2, timeout=30.0)
    try:
        raws = [note("fine", n) for n in range(6)]
        raws[2] = note("KILLS-THE-PARSER", 2)
        outcomes = list(pool.submit(raws).outcomes())
        assert outcomes[2] == ParseFailure("parser process died")
        assert [o for i, o in enumerate(outcomes) if i != 2] == [parse_message(r) for i, r in enumerate(raws) if i != 2]
        assert list(pool.submit([note("after", 9)]).outcomes()) == [parse_message(note("after", 9))]
    finally:
        pool.close()


def test_a_message_that_hangs_its_worker_times_out_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PARSER_HANG_ENV, "HANGS-THE-PARSER")
    pool = ParsePool(workers=1, timeout=1.0)
    try:
        raws = [note("fine", 0), note("HANGS-THE-PARSER", 1), note("fine", 2)]
        outcomes = list(pool.submit(raws).outcomes())
        assert outcomes[1] == ParseFailure("parse took over 1 s")
        assert [outcomes[0], outcomes[2]] == [parse_message(raws[0]), parse_message(raws[2])]
    finally:
        pool.close()


def test_a_closed_pool_tells_the_caller_to_parse_itself(pool: ParsePool) -> None:
    outcomes = pool.submit([note("a", 1)]).outcomes()
    pool.close()
    with pytest.raises(PoolUnavailable):
        next(outcomes)


def test_a_worker_stuck_in_a_message_ends_when_the_service_is_killed(tmp_path: Path) -> None:
    script = f"""
import os, sys
os.environ[{PARSER_HANG_ENV!r}] = "HANGS"
from futurnal.parse.parse_pool import ParsePool
pool = ParsePool(workers=1, timeout=60)
pool.submit([b"Subject: x\\r\\n\\r\\nHANGS\\r\\n"])
print(pool._workers[0].process.pid, flush=True)
os._exit(0)  # as SIGKILL would: no clean-up, the worker stays behind in its message
"""
    # stderr is not captured: the worker inherits it, and a pipe it holds would keep run() waiting.
    done = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, timeout=60)
    worker = int(done.stdout.split()[0])
    deadline = time.monotonic() + 20
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the orphaned worker is still running"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_message_that_needs_more_memory_than_the_cap_fails_alone() -> None:
    pool = ParsePool(workers=1, timeout=60.0, memory_mb=200)
    try:
        # Base64 text decodes to about 3/4 of its size and is copied while parsed: far over 200 MB.
        huge = (b"From: x@example.org\r\nSubject: big\r\nContent-Type: text/plain\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUFB" * 20_000_000 + b"\r\n")
        outcomes = list(pool.submit([note("before", 1), huge, note("after", 2)]).outcomes())
        assert isinstance(outcomes[1], ParseFailure), outcomes[1]
        assert outcomes[1].reason == "parsing needed more than 200 MB of memory"
        assert [outcomes[0], outcomes[2]] == [parse_message(note("before", 1)), parse_message(note("after", 2))]
    finally:
        pool.close()
