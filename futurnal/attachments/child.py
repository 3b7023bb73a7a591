"""Extraction children, forked one per attachment by ``python -m futurnal.attachments.child``.

That process is a small fork server: it imports the extraction libraries once, then for each
JSON request line on stdin (``path``, ``kind``, ``charset``, ``max_chars``, ``memory_mb``,
``timeout_seconds``) forks a child, answers ``{"pid": N}`` at once (so the service can kill the
child's process group past the wall-clock limit), and ``{"status": S, "answer": ...}`` when the
child has ended. The server runs one extraction of each kind on a stub first (:func:`warm_up`),
so that imports done on first use are done once, not in every child. A fork costs a few
milliseconds where a fresh interpreter, with pypdf to import,
cost 60-150 ms per file; the child is as isolated as before.

The child caps its own address space with ``RLIMIT_AS`` before touching the file, extracts, and
answers ``{"text": ...}``, or ``{"error": ...}`` with exit status 2 (refused or unreadable) or 3
(out of memory).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from typing import Any

__all__ = ["main", "warm_up"]

EXIT_FAILED = 2
EXIT_OUT_OF_MEMORY = 3


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space; allocations past it raise MemoryError."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not leave mail in a core file


def outlive_no_parent(timeout_seconds: float) -> None:
    """Limits that hold even if the service is killed (SIGKILL) and cannot kill this child: the
    kernel ends it when the parent dies (Linux), and after the timeout's worth of CPU time anyway."""
    seconds = int(timeout_seconds) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    _die_with_parent()


def main() -> int:
    """The fork server's loop; ends when the service closes stdin, or dies."""
    # Not PR_SET_PDEATHSIG here: it fires when the *thread* that started us ends, and the service
    # hands servers from one worker thread to another. Children do use it (our main thread forks).
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    warm_up()
    for line in sys.stdin.buffer:
        request: dict[str, Any] = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            os.setsid()  # a group of its own, which the service kills past the time limit
            os._exit(_child(request, write_end))
        os.close(write_end)
        _reply({"pid": pid})
        with os.fdopen(read_end, "rb") as answer:
            data = answer.read()  # until the child exits or is killed
        _, status = os.waitpid(pid, 0)
        _reply({"status": os.waitstatus_to_exitcode(status), "answer": data.decode("utf-8", "replace") or None})
    return 0


def warm_up() -> None:
    """Import here, once, everything a child would otherwise import on its first use.

    pypdf loads modules lazily (its filters pull in subprocess, tempfile, locale): a few
    milliseconds a child would pay on every file. ``gc.freeze`` then keeps the children's
    collector off the inherited objects, so fewer of the server's pages get copied.
    """
    import ctypes  # noqa: F401  the children's parent-death signal
    import gc

    from .extract import extract_text

    samples = {"pdf": b"%PDF-1.4\n%%EOF\n", "docx": b"PK\x05\x06" + bytes(18), "html": b"<p>x</p>", "text": b"x"}
    for kind, data in samples.items():
        try:
            extract_text(data, kind)
        except Exception:  # noqa: BLE001  refusals and pypdf's errors on stubs: only the imports matter
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


def _child(request: dict[str, Any], out: int) -> int:
    outlive_no_parent(float(request.get("timeout_seconds", 60)))
    limit_memory(int(request["memory_mb"]))
    try:
        from .extract import extract_text

        with open(request["path"], "rb") as handle:
            data = handle.read()
        text = extract_text(data, request["kind"], charset=request.get("charset"),
                            max_chars=int(request.get("max_chars", 1_000_000)))
    except MemoryError:
        return _answer(out, {"error": "out of memory"}, EXIT_OUT_OF_MEMORY)
    except RecursionError:
        return _answer(out, {"error": "RecursionError"}, EXIT_FAILED)
    except Exception as exc:  # the library's own error on a file it cannot read
        return _answer(out, {"error": f"{exc.__class__.__name__}: {exc}"[:300]}, EXIT_FAILED)
    return _answer(out, {"text": text}, 0)


def _answer(out: int, payload: dict[str, Any], status: int) -> int:
    try:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
        with os.fdopen(out, "wb") as stream:
            stream.write(data)
    except MemoryError:
        return EXIT_OUT_OF_MEMORY
    return status


if __name__ == "__main__":
    sys.exit(main())
