"""A deliberately tiny process that starts the measured commands and reaps them with wait4.

Why it exists: Linux carries a process's peak RSS across ``execve`` (the old memory map's
high-water mark is recorded at exec), so a command forked from the benchmark process - which
holds hundreds of MB of generated mail - would report that as its own peak, whatever it really
used. Forking from this small process instead puts the floor at a few MB (measured and printed
by the benchmark), and a child's ``ru_maxrss`` is exact whenever it is above that floor.

Run as ``python -I -S spawner.py``; it imports only built-in modules. Protocol on stdin/stdout,
one ``marshal`` record each way: a request ``{"argv", "env", "cwd", "stdin", "stdout",
"stderr"}`` (paths), then the replies ``{"pid"}`` at once and ``{"status", "wall", "utime",
"stime", "maxrss_kb"}`` when the child has exited. EOF on stdin ends it.
"""

import marshal
import os
import sys
import time


def _serve() -> None:
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            request = marshal.load(requests)
        except EOFError:
            return
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # child: only os calls between fork and exec
            try:
                if request["cwd"]:
                    os.chdir(request["cwd"])
                stdin = os.open(request["stdin"] or os.devnull, os.O_RDONLY)
                stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                stderr = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(stdin, 0)
                os.dup2(stdout, 1)
                os.dup2(stderr, 2)
                os.closerange(3, 4096)
                os.execvpe(request["argv"][0], request["argv"], request["env"])
            except BaseException as exc:  # noqa: BLE001 - report anything, then leave without cleanup
                os.write(2, f"spawner: cannot run {request['argv'][0]}: {exc}\n".encode())
            os._exit(127)
        marshal.dump({"pid": pid}, replies)
        replies.flush()
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        marshal.dump({"status": status, "wall": wall, "utime": usage.ru_utime, "stime": usage.ru_stime,
                      "maxrss_kb": usage.ru_maxrss}, replies)
        replies.flush()


if __name__ == "__main__":
    _serve()
