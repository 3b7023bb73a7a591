"""Extraction children, each serving a few files of one mailbox in turn, under per-file limits.

``python -m futurnal.attachments.child`` is a small fork server. It imports the extraction
libraries once (:func:`warm_up`), then for each JSON request line on stdin (``path``, ``kind``,
``charset``, ``max_chars``, ``memory_mb``, ``timeout_seconds``, ``group``, ``files_per_child``,
``fresh``) hands the file to its current child, forking one when there is none. It answers
``{"pid": N}`` at once (so the service can kill the child's process group past the wall-clock
limit), then ``{"status": S, "answer": ...}`` when the child has answered or ended: ``S`` is 0 for
a child that extracted the file and serves on, else the exit status of the child, which has ended.

A child is used again only for files of the same ``group`` (the mailbox) and the same limits,
and never after it failed, went over a limit or was killed: it then ends and the next file gets a
new child. It also ends after ``files_per_child`` files, and when its address space has grown by
more than :data:`RETIRE_GROWTH_MB` since it was forked, so each file starts with about the
memory headroom a fresh child has. ``fresh`` asks for a new child whatever (the service sends it
after it killed one). A fork costs a few milliseconds of process handling: served files skip it.

The limits, per file:

* wall clock: the service kills the child's process group past ``timeout_seconds`` of one file;
* CPU: before each file the child sets its ``RLIMIT_CPU`` soft limit to the CPU it has used so far
  plus ``timeout_seconds`` + 2 s, so earlier files' CPU is not charged to the next one; the kernel
  sends SIGXCPU past it (the hard limit, fixed at the fork, is the sum of every file's share);
* memory: ``RLIMIT_AS`` at ``memory_mb``, set at the fork (MemoryError past it: exit status 3).
  PDFium, being C++, aborts instead when an allocation fails: a child killed by a crash signal
  whose peak resident size came within :data:`NEAR_CAP` of the cap is counted as out of memory
  too (the server reports status 3 for it); any other crash is reported as the signal. A child
  whose peak came that near after a file it survived is replaced, so the peak is always the
  current file's.

Answers from a child to the server are one line per file: ``K`` (kept: it serves on) or ``E``
(it ends now) and the JSON ``{"text": ...}`` or ``{"error": ...}``; its exit status is then 0,
2 (refused or unreadable) or 3 (out of memory).
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import threading
import time
from typing import IO, Any

__all__ = ["judged_exit", "main", "warm_up"]

EXIT_FAILED = 2
EXIT_OUT_OF_MEMORY = 3
#: A child whose address space grew by more than this while serving is replaced.
RETIRE_GROWTH_MB = 64
DEFAULT_FILES_PER_CHILD = 64
#: A child that crashed with its peak resident size past this share of ``memory_mb`` ran out of
#: memory: measured, PDFium aborts at about 10-15 MB under the cap (the rest is mapped, not resident).
NEAR_CAP = 0.75
_CRASH_SIGNALS = {signal.SIGABRT, signal.SIGSEGV, signal.SIGBUS, signal.SIGTRAP, signal.SIGILL}


def judged_exit(code: int, peak_bytes: int, memory_mb: int) -> int:
    """A dead child's exit status as the service should read it: :data:`EXIT_OUT_OF_MEMORY` for a
    crash signal after its peak resident size (``peak_bytes``) came near its cap, as a native
    library's abort at the cap does; else ``code`` itself."""
    if -code in _CRASH_SIGNALS and _near_cap(peak_bytes, memory_mb):
        return EXIT_OUT_OF_MEMORY
    return code


def _near_cap(peak_bytes: int, memory_mb: int) -> bool:
    return peak_bytes >= NEAR_CAP * memory_mb * 1024 * 1024


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space; allocations past it raise MemoryError."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not leave mail in a core file


def cpu_seconds_per_file(timeout_seconds: float) -> int:
    """A file's CPU limit: a second line behind the service's wall clock."""
    return int(timeout_seconds) + 2


def cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def limit_cpu_for_next_file(per_file: int, hard: int) -> bool:
    """Let the next file use ``per_file`` seconds of CPU from now; False if the hard limit is in the way."""
    soft = math.ceil(cpu_used()) + per_file
    if soft > hard:
        return False
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    return True


def main() -> int:
    """The fork server's loop; ends when the service closes stdin, or dies."""
    from futurnal.process import stage_cpu
    from futurnal.process.malloc_threshold import fix_mmap_threshold

    # Not PR_SET_PDEATHSIG here: it fires when the *thread* that started us ends, and the service
    # hands servers from one worker thread to another. Children do use it (our main thread forks).
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    fix_mmap_threshold()  # inherited by the children: a large file's buffers go back when freed
    warm_up()
    child: _Child | None = None
    try:
        for line in sys.stdin.buffer:
            request: dict[str, Any] = json.loads(line)
            if child is not None and not child.fits(request):
                child.end(kill=bool(request.get("fresh")))
                child = None
            if child is None:
                child = _Child(request)
            _reply({"pid": child.pid})
            status, answer = child.serve(request)
            if child.ended:
                child = None
            _reply({"status": status, "answer": answer})
    finally:
        if child is not None:
            child.end()
        stage_cpu.report("extraction-server")  # its own CPU and its children's, all waited for
    return 0


class _Child:
    """The server's side of one child: its pid, the pipes to it, what it may still be given."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.group = request.get("group")
        self.limits = (request["memory_mb"], request.get("timeout_seconds"), request.get("max_chars"))
        self.ended = False
        files = max(1, int(request.get("files_per_child") or DEFAULT_FILES_PER_CHILD))
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            status = EXIT_FAILED
            try:
                os.close(request_write)
                os.close(answer_read)
                os.setsid()  # a group of its own, which the service kills past the time limit
                _detach_from_service()
                status = _serve_files(request, files, os.fdopen(request_read, "rb"), os.fdopen(answer_write, "wb"))
            finally:
                os._exit(status)
        os.close(request_read)
        os.close(answer_write)
        self.pid = pid
        self._requests = os.fdopen(request_write, "wb")
        self._answers = os.fdopen(answer_read, "rb")

    def fits(self, request: dict[str, Any]) -> bool:
        limits = (request["memory_mb"], request.get("timeout_seconds"), request.get("max_chars"))
        return (not request.get("fresh") and request.get("group") == self.group and limits == self.limits
                and os.waitpid(self.pid, os.WNOHANG) == (0, 0))

    def serve(self, request: dict[str, Any]) -> tuple[int, str | None]:
        """The child's answer to one file: (0, answer) while it serves on, else (exit status, answer)."""
        try:
            self._requests.write(json.dumps(request).encode() + b"\n")
            self._requests.flush()
            line = self._answers.readline()  # until the child answers, exits or is killed
        except OSError:  # it died between two files
            line = b""
        if line[:1] == b"K" and line.endswith(b"\n"):
            return 0, line[1:-1].decode("utf-8", "replace")
        status = self.end()
        answer = line[1:].rstrip(b"\n") if line[:1] in (b"K", b"E") else line
        return status, answer.decode("utf-8", "replace") or None

    def end(self, kill: bool = False) -> int:
        """Close its pipes (it exits when it reads the end) and wait for it; its exit status."""
        self.ended = True
        if kill:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for stream in (self._requests, self._answers):
            try:
                stream.close()
            except OSError:
                pass
        try:
            _, status, usage = os.wait4(self.pid, 0)
        except ChildProcessError:
            return EXIT_FAILED
        return judged_exit(os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, int(self.limits[0]))


def _serve_files(first: dict[str, Any], files: int, requests: IO[bytes], answers: IO[bytes]) -> int:
    """The child: extract file after file until told to stop, or until it must end; its exit status."""
    _die_with_parent()
    per_file = cpu_seconds_per_file(float(first.get("timeout_seconds", 60)))
    hard = files * (per_file + 1) + 1  # every file's share, each at most a second more than its limit
    resource.setrlimit(resource.RLIMIT_CPU, (per_file, hard))
    memory_mb = int(first["memory_mb"])
    limit_memory(memory_mb)
    forked_with = _address_space()
    for served in range(1, files + 1):
        line = requests.readline()
        if not line:
            return 0  # the server is done with this child
        if not limit_cpu_for_next_file(per_file, hard):
            return EXIT_FAILED  # cannot happen with the hard limit above; a child that cannot limit ends
        payload, status = _extract(json.loads(line))
        grown = _address_space() - forked_with > RETIRE_GROWTH_MB * 1024 * 1024
        # A child whose peak came near the cap ends too: the peak a later crash would be judged by
        # (see _Child.end) must be that file's own, not an earlier one's.
        near_cap = _near_cap(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, memory_mb)
        last = status != 0 or served == files or grown or near_cap
        try:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
            answers.write((b"E" if last else b"K") + data + b"\n")
            answers.flush()
        except MemoryError:
            return EXIT_OUT_OF_MEMORY
        except OSError:
            return EXIT_FAILED
        if last:
            return status
    return 0


def _extract(request: dict[str, Any]) -> tuple[dict[str, Any], int]:
    try:
        from .extract import extract_text

        with open(request["path"], "rb") as handle:
            data = handle.read()
        text = extract_text(data, request["kind"], charset=request.get("charset"),
                            max_chars=int(request.get("max_chars", 1_000_000)))
    except MemoryError:
        return {"error": "out of memory"}, EXIT_OUT_OF_MEMORY
    except RecursionError:
        return {"error": "RecursionError"}, EXIT_FAILED
    except Exception as exc:  # the library's own error on a file it cannot read
        return {"error": f"{exc.__class__.__name__}: {exc}"[:300]}, EXIT_FAILED
    return {"text": text}, 0


def _detach_from_service() -> None:
    """Let go of the server's stdin and stdout: nothing a library prints can reach the service's
    replies, and the service sees the server's end at once, not when an idle child ends too."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)


def _address_space() -> int:
    """This process's virtual size in bytes: what ``RLIMIT_AS`` counts (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


#: One page showing "x": the smallest PDF whose text PDFium really reads (no xref: it rebuilds one).
_SAMPLE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 9 9]/Contents 4 0 R"
    b"/Resources<</Font<</F1<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>>>>>>>endobj\n"
    b"4 0 obj<</Length 21>>stream\nBT /F1 1 Tf (x) Tj ET\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def warm_up() -> None:
    """Import here, once, everything a child would otherwise import on its first use.

    pypdfium2 loads PDFium (an 8 MB shared library) on import, and reading a page's text loads a
    codec (UTF-16) on first use: milliseconds a child would pay on every file. So each extractor
    reads a small sample once. ``gc.freeze`` then keeps the children's collector off the
    inherited objects, so fewer of the server's pages get copied.
    """
    import ctypes  # noqa: F401  the children's parent-death signal
    import gc

    from .extract import extract_text

    samples = {"pdf": _SAMPLE_PDF, "docx": b"PK\x05\x06" + bytes(18), "html": b"<p>x</p>", "text": b"x"}
    for kind, data in samples.items():
        try:
            extract_text(data, kind)
        except Exception:  # noqa: BLE001  refusals and PDFium's errors on stubs: only the imports matter
            pass
    gc.collect()
    gc.freeze()


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.buffer.write(json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
    sys.stdout.buffer.flush()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(EXIT_FAILED)  # the running child follows: its parent-death signal


def _die_with_parent() -> None:
    """Be killed when the parent (thread) dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        except (OSError, AttributeError):
            pass
    if os.getppid() == 1:  # the parent died before the line above: nobody waits for us
        os._exit(EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
