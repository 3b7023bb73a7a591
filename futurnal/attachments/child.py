"""The extraction child: ``python -m futurnal.attachments.child``, one attachment per process.

Reads one JSON request on stdin (``path``, ``kind``, ``charset``, ``max_chars``, ``memory_mb``),
caps its own address space with ``RLIMIT_AS`` before touching the file, extracts, and writes one
JSON answer on stdout: ``{"text": ...}``, or ``{"error": ...}`` with exit status 2 (refused or
unreadable) or 3 (out of memory). The parent (:mod:`.runner`) enforces the wall-clock limit.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from typing import Any

__all__ = ["main"]

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
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
            if os.getppid() == 1:  # the parent died before the line above: nobody waits for us
                os._exit(EXIT_FAILED)
        except (OSError, AttributeError):
            pass


def main() -> int:
    request: dict[str, Any] = json.loads(sys.stdin.buffer.read())
    outlive_no_parent(float(request.get("timeout_seconds", 60)))
    limit_memory(int(request["memory_mb"]))
    try:
        from .extract import extract_text

        with open(request["path"], "rb") as handle:
            data = handle.read()
        text = extract_text(data, request["kind"], charset=request.get("charset"),
                            max_chars=int(request.get("max_chars", 1_000_000)))
    except MemoryError:
        return _answer({"error": "out of memory"}, EXIT_OUT_OF_MEMORY)
    except RecursionError:
        return _answer({"error": "RecursionError"}, EXIT_FAILED)
    except Exception as exc:  # the library's own error on a file it cannot read
        return _answer({"error": f"{exc.__class__.__name__}: {exc}"[:300]}, EXIT_FAILED)
    return _answer({"text": text}, 0)


def _answer(payload: dict[str, Any], status: int) -> int:
    try:
        sys.stdout.buffer.write(json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        sys.stdout.buffer.flush()
    except MemoryError:
        return EXIT_OUT_OF_MEMORY
    return status


if __name__ == "__main__":
    sys.exit(main())
