"""The parser worker process: raw messages in on stdin, parse results out on stdout.

Why a process of its own: parsing is pure CPU in Python, so in the service's process it holds the
GIL that the IMAP reader and the sink's file writes need, and it can use one core at most. A
worker also contains the damage of a message that crashes or hangs the parser: the worker dies
or is killed, the message is quarantined, and the service lives on.

Protocol, both ways: frames of an 8-byte sequence number, a 4-byte length (both big-endian) and
the payload. Requests carry a message's raw bytes; replies carry a pickled ``("ok",
ParsedMessage)`` or ``("error", exception class name)``, in request order. The worker first
sends one frame with sequence number 0 and payload ``b"ready"``, so the pool knows it started.
It exits when stdin closes. It is started by :mod:`futurnal.parse.parse_pool`, never by hand.
"""

from __future__ import annotations

import os
import pickle
import resource
import struct
import sys
import threading
from typing import IO, BinaryIO

from futurnal.process import stage_cpu
from futurnal.process.faults import parser_fault_hook_from_env
from futurnal.process.malloc_threshold import fix_mmap_threshold

from .parser import parse_message

__all__ = ["FRAME", "READY", "read_frame", "serve", "write_frame"]

FRAME = struct.Struct(">QI")
READY = b"ready"


def read_frame(stream: IO[bytes]) -> tuple[int, bytes] | None:
    """The next frame, or None at end of stream (also for a frame cut short)."""
    head = stream.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    seq, length = FRAME.unpack(head)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return seq, payload


def write_frame(stream: IO[bytes], seq: int, payload: bytes) -> None:
    stream.write(FRAME.pack(seq, len(payload)))
    stream.write(payload)
    stream.flush()


def _exit_when_orphaned(interval: float = 1.0) -> None:
    """End this process once its parent is gone (killed with SIGKILL, say), even mid-parse.

    A closed stdin ends a worker between messages; this also ends one stuck in a message.
    """
    parent = os.getppid()
    while not _stopping.wait(interval):
        if os.getppid() != parent:
            os._exit(1)


_stopping = threading.Event()


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer every request until the request stream ends."""
    threading.Thread(target=_exit_when_orphaned, daemon=True, name="orphan-watch").start()
    fault = parser_fault_hook_from_env()
    write_frame(replies, 0, READY)
    while (frame := read_frame(requests)) is not None:
        seq, raw = frame
        if fault is not None:
            fault(raw)
        try:
            started = stage_cpu.clock()
            reply: tuple[str, object] = ("ok", parse_message(raw))
            stage_cpu.add("parse.mime", started)
            started = stage_cpu.clock()
            answer = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            stage_cpu.add("parse.pickle", started)
        except Exception as exc:  # parse_message does not raise by contract; a bug still must not kill us
            # MemoryError included: the pool replaces a worker that ran out of memory.
            del raw
            answer = pickle.dumps(("error", type(exc).__name__))
        write_frame(replies, seq, answer)
    _stopping.set()


def _limit_memory(argv: list[str]) -> None:
    """``--memory-mb N``: cap this process's address space, so one message cannot take the machine."""
    if "--memory-mb" in argv:
        limit = int(argv[argv.index("--memory-mb") + 1]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    _limit_memory(sys.argv[1:])
    stage_cpu.report_at_exit("parse-worker")
    fix_mmap_threshold()  # a worker that parsed a 4 MB message must not keep that memory
    # Frames get a private copy of stdout; anything else printed goes to stderr, not into a frame.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
