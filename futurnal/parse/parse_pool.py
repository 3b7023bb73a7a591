"""A small pool of parser worker processes, so parsing uses every core and never blocks the GIL.

A folder sync is a pipeline: read a batch from IMAP, parse it, write its elements. Parsing is
CPU-bound Python, and in one process it holds the GIL that the IMAP socket reads and the sink's
file writes wait for. :class:`ParsePool` moves it into worker processes
(:mod:`futurnal.parse.parse_worker`): :meth:`ParsePool.submit` hands a batch over without
blocking, so the caller fetches the next batch meanwhile, and :meth:`ParseBatch.outcomes` gives
the results back in the batch's order.

The workers are plain subprocesses speaking a framed protocol over pipes, not
``multiprocessing``: nothing is forked from a process full of threads, an embedding
application's ``__main__`` is never re-imported, and each worker handles one message at a time,
so a worker that dies or hangs names exactly the message that did it. That message comes back as
a :class:`ParseFailure` (the caller quarantines it), the worker is replaced, and the messages
queued behind it are handed to the replacement.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from futurnal.process import stage_cpu

from .parse_worker import READY, read_frame, write_frame
from .parser import ParsedMessage

__all__ = ["DEFAULT_MEMORY_MB", "ParseBatch", "ParseFailure", "ParseOutcome", "ParsePool", "PoolUnavailable"]

_STARTUP_TIMEOUT = 30.0
#: Address-space cap of a parser process: many times what any sane message needs to parse.
DEFAULT_MEMORY_MB = 1024
_EOF = (-1, b"")  # what the collector queues when the worker's stdout ends


#: Pipe capacity asked for each direction: a typical message (50 KB) and its answer then cross in
#: one write and one read, where the default 64 KB made the feeding thread and the worker take
#: turns on larger ones. 1 MiB is Linux's default ceiling for unprivileged processes.
_PIPE_BYTES = 1024 * 1024


def _widen(pipe: IO[bytes]) -> None:
    """Ask for a pipe of :data:`_PIPE_BYTES`; where that is refused, the default size does."""
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (OSError, AttributeError):  # over the user's pipe quota, or not Linux
        pass


class PoolUnavailable(Exception):
    """No worker process could be started (no interpreter to run, no pipes); parse in-process."""


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """A message the pool could not parse; ``reason`` is what the quarantine record says."""

    reason: str


ParseOutcome = ParsedMessage | ParseFailure


class _Worker:
    """One worker process, with a thread that feeds it and one that collects its replies.

    Both directions need their own thread: a worker blocks writing a reply while nobody reads it,
    and the pool must not block writing requests while the caller is busy with IMAP.
    """

    def __init__(self, memory_mb: int | None) -> None:
        # The parent's import path, as multiprocessing's spawn passes it: the worker finds futurnal
        # wherever this process found it.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        limit = ["--memory-mb", str(memory_mb)] if memory_mb else []
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "futurnal.parse.parse_worker", *limit],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                start_new_session=True,  # Ctrl+C goes to the service, which stops the workers itself
            )
        except OSError as exc:
            raise PoolUnavailable(f"cannot start a parser process: {exc}") from None
        assert self.process.stdin is not None and self.process.stdout is not None
        for pipe in (self.process.stdin, self.process.stdout):
            _widen(pipe)
        #: (seq, raw) handed to this worker and not yet answered, oldest first.
        self.outstanding: deque[tuple[int, bytes]] = deque()
        self.outstanding_bytes = 0
        self.replies: queue.Queue[tuple[int, bytes]] = queue.Queue()
        self.died = False
        self._requests: queue.Queue[tuple[int, bytes] | None] = queue.Queue()
        threading.Thread(target=self._feed, args=(self.process.stdin,), daemon=True,
                         name="parse-pool-feed").start()
        threading.Thread(target=self._collect, args=(self.process.stdout,), daemon=True,
                         name="parse-pool-collect").start()
        first = self._next_reply(time.monotonic() + _STARTUP_TIMEOUT)
        if first != (0, READY):
            self.stop()
            raise PoolUnavailable("a parser process did not start")

    def send(self, seq: int, raw: bytes) -> None:
        self.outstanding.append((seq, raw))
        self.outstanding_bytes += len(raw)
        self._requests.put((seq, raw))

    def reply_to(self, seq: int, deadline: float) -> bytes | None:
        """The reply to request ``seq``; None if the worker died (``died`` is set) or the deadline passed."""
        while True:
            reply = self._next_reply(deadline)
            if reply is None:
                return None
            got, payload = reply
            if reply is _EOF:
                self.died = True
                return None
            while self.outstanding and self.outstanding[0][0] <= got:
                self.outstanding_bytes -= len(self.outstanding.popleft()[1])
            if got == seq:
                return payload
            # An older request whose batch was abandoned: nobody wants its reply any more.

    def _next_reply(self, deadline: float) -> tuple[int, bytes] | None:
        try:
            return self.replies.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def stop(self, wait: float = 0.0) -> None:
        """Close the worker's stdin (it exits); kill it if it has not gone within ``wait``."""
        self._requests.put(None)
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    def _feed(self, stdin: IO[bytes]) -> None:
        started = stage_cpu.clock()
        try:
            while (item := self._requests.get()) is not None:
                write_frame(stdin, *item)
        except (OSError, ValueError):  # the worker died: the collector reports it
            pass
        finally:
            stage_cpu.add("parse.pipes", started)
            try:
                stdin.close()
            except OSError:
                pass

    def _collect(self, stdout: IO[bytes]) -> None:
        started = stage_cpu.clock()
        try:
            while (frame := read_frame(stdout)) is not None:
                self.replies.put(frame)
        except (OSError, ValueError):
            pass
        self.replies.put(_EOF)
        stage_cpu.add("parse.pipes", started)


class ParseBatch:
    """Messages handed to the pool together; :meth:`outcomes` gives their results in order."""

    def __init__(self, pool: ParsePool, assignments: list[tuple[int, int]]) -> None:
        self._pool = pool
        self._assignments = assignments  # (worker slot, seq), in message order

    def __len__(self) -> int:
        return len(self._assignments)

    def outcomes(self) -> Iterator[ParseOutcome]:
        """Each message's result, in the order submitted; waits at most ``timeout`` for each.

        Raises :class:`PoolUnavailable` when the pool broke (workers cannot be restarted) or was
        closed: the caller parses the remaining messages itself.
        """
        for slot, seq in self._assignments:
            yield self._pool._outcome(slot, seq)


class ParsePool:
    """Up to ``workers`` parser processes, started as batches need them and kept until :meth:`close`.

    Every message is parsed here, never in the caller's process, so every one is bounded:
    ``timeout`` bounds the parsing of one message (a worker that takes longer is killed and the
    message is reported as failed) and ``memory_mb`` the address space of each worker (a message
    that needs more fails alone, and its worker is replaced). A batch of one message starts one
    worker, not all of them.

    Not thread-safe: one owner (a fetcher) submits and collects.
    """

    def __init__(self, workers: int = 2, timeout: float = 60.0, memory_mb: int | None = DEFAULT_MEMORY_MB) -> None:
        if workers < 1:
            raise ValueError("a parse pool needs at least one worker")
        self._size = workers
        self._memory_mb = memory_mb
        self._timeout = timeout
        self._workers: list[_Worker] = []
        self._next_seq = 1  # 0 is the workers' ready frame
        self._broken: str | None = None  # why workers can no longer be started

    def submit(self, raws: Sequence[bytes]) -> ParseBatch:
        """Queue messages for parsing without waiting; raises :class:`PoolUnavailable`."""
        if self._broken is not None:
            raise PoolUnavailable(self._broken)
        self._grow(min(self._size, max(len(self._workers), len(raws))))
        assignments = []
        for raw in raws:
            # To the worker with the fewest bytes handed over and not yet collected (the pipeline
            # collects one batch while the next is parsed): message sizes vary a hundredfold, and
            # taking turns left one worker idle while the other worked through the big ones.
            slot = min(range(len(self._workers)), key=lambda index: self._workers[index].outstanding_bytes)
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            self._workers[slot].send(seq, raw)
            assignments.append((slot, seq))
        return ParseBatch(self, assignments)

    def outstanding_bytes(self) -> list[int]:
        """Per worker, the bytes of the messages handed to it whose results were not collected yet."""
        return [worker.outstanding_bytes for worker in self._workers]

    def close(self) -> None:
        """Stop every worker (each gets a moment to exit on its own, then is killed)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop(wait=2.0)

    def _grow(self, count: int) -> None:
        try:
            while len(self._workers) < count:
                self._workers.append(_Worker(self._memory_mb))
        except PoolUnavailable as exc:
            self._broken = str(exc)
            self.close()
            raise

    def _outcome(self, slot: int, seq: int) -> ParseOutcome:
        if self._broken is not None or not self._workers:
            raise PoolUnavailable(self._broken or "the parser pool was closed")
        worker = self._workers[slot]
        payload = worker.reply_to(seq, time.monotonic() + self._timeout)
        if payload is not None:
            started = stage_cpu.clock()
            status, value = pickle.loads(payload)
            stage_cpu.add("parse.unpickle", started)
            if status == "ok":
                return value  # type: ignore[no-any-return]
            if value != "MemoryError":
                return ParseFailure(f"parse failed: {value}")
            # A worker that ran out of memory may be left in any state: it is not trusted again.
            failure = ParseFailure(f"parsing needed more than {self._memory_mb} MB of memory")
        else:
            failure = ParseFailure("parser process died" if worker.died else f"parse took over {self._timeout:g} s")
        try:
            self._replace(slot, worker, seq)
        except PoolUnavailable as exc:
            self._broken = str(exc)
            self.close()
        return failure

    def _replace(self, slot: int, worker: _Worker, failed_seq: int) -> None:
        """A new worker in ``slot``, given every request the old one had not answered after ``failed_seq``."""
        worker.stop()
        queued = [(seq, raw) for seq, raw in worker.outstanding if seq > failed_seq]
        replacement = _Worker(self._memory_mb)
        self._workers[slot] = replacement
        for seq, raw in queued:
            replacement.send(seq, raw)
