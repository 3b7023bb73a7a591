"""A scriptable, misbehaving IMAP4rev1 server on 127.0.0.1, for hardening tests.

Real servers fail in ways that are hard to produce on demand: a FETCH answer without the body
that was asked for, a whole batch refused because one message file is unreadable (Dovecot's
``NO [SERVERBUG]``), a literal far larger than the RFC822.SIZE it announced, a body that
trickles in a byte at a time, UIDVALIDITY values above 2**32-1, folder names full of terminal
escape sequences. This server speaks just enough of RFC 3501 for IMAPClient (greeting,
CAPABILITY, LOGIN, ENABLE, ID, LIST, SELECT/EXAMINE, STATUS, UID FETCH, UID SEARCH, IDLE, CLOSE,
LOGOUT) and lets a test script those faults message by message::

    server = HostileImap({"INBOX": Folder(uidvalidity=7, messages={1: raw1, 2: raw2})})
    server.folders["INBOX"].quirks[2] = Quirk(omit_body=1)   # BODY[] left out the first time
    with server:                                              # start(); stop() on the way out
        ...connect to 127.0.0.1:server.port with --security plain...
    assert server.command_count < 50

The script is plain data and may be changed while the server runs (drop a quirk to "fix" the
server between two syncs). Plain TCP on loopback only, read-only, no CONDSTORE/QRESYNC, one
namespace with "/" as the delimiter. Every socket has a timeout and every thread is a daemon,
so a confused client never hangs a test run; ``stop()`` cuts all connections at once.
"""

from __future__ import annotations

import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

from imapclient.imap_utf7 import decode as utf7_decode
from imapclient.imap_utf7 import encode as utf7_encode

__all__ = ["Folder", "HostileImap", "Quirk"]

CAPABILITIES = "IMAP4rev1 ENABLE ID IDLE UNSELECT"
INTERNALDATE = '"01-Jan-2026 10:00:00 +0000"'
_CHUNK = 64 * 1024
_FILLER = (b"X" * 76 + b"\r\n") * (_CHUNK // 78 + 1)
_LITERAL_AT_END = re.compile(rb"\{(\d+)(\+?)\}\r?\n$")


@dataclass
class Quirk:
    """How the server misbehaves for one UID.

    ``omit_body``: True leaves BODY[] out of every FETCH answer, a number N only the first N times.
    ``fail_batch_with``: any UID FETCH asking for a body of a set holding this UID answers the
    messages before it, then ``NO [SERVERBUG] <text>``, as Dovecot does with an unreadable file.
    ``literal_size``: announce ``{N}`` for BODY[] and stream N bytes of filler (never held in memory).
    ``trickle``: send the BODY[] literal at this many bytes per second.
    ``size_lie``: the RFC822.SIZE to report instead of the real one.
    """

    omit_body: bool | int = False
    fail_batch_with: str | None = None
    literal_size: int | None = None
    trickle: float | None = None
    size_lie: int | None = None
    omitted: int = 0  # how many times BODY[] was left out so far


@dataclass
class Folder:
    """One folder: its UIDVALIDITY (any int), messages by UID (sparse is fine), optional UIDNEXT."""

    uidvalidity: int
    messages: dict[int, bytes] = field(default_factory=dict)
    uidnext: int | None = None
    flags: dict[int, tuple[str, ...]] = field(default_factory=dict)
    quirks: dict[int, Quirk] = field(default_factory=dict)

    def next_uid(self) -> int:
        return self.uidnext if self.uidnext is not None else max(self.messages, default=0) + 1


class HostileImap:
    """The script and state of one server, its listener, and what it was asked."""

    def __init__(self, folders: dict[str, Folder] | None = None, *, username: str | None = None,
                 password: str | None = None, timeout: float = 30.0, capabilities: str = CAPABILITIES) -> None:
        self.folders: dict[str, Folder] = folders if folders is not None else {"INBOX": Folder(1)}
        self.capabilities = capabilities  # e.g. without IDLE, to be polled
        self.username, self.password = username, password
        self.timeout = timeout
        self.log: list[str] = []  # every command line received, in order, across connections
        self.body_fetches: Counter[tuple[str, int]] = Counter()  # (folder, uid) -> whole bodies asked for
        self.port = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self._listener: socket.socket | None = None
        self._live: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def command_count(self) -> int:
        with self.lock:
            return len(self.log)

    def commands(self) -> list[str]:
        with self.lock:
            return list(self.log)

    def folder(self, name: str) -> tuple[str, Folder] | None:
        if name.upper() == "INBOX":
            name = next((n for n in self.folders if n.upper() == "INBOX"), name)
        return (name, self.folders[name]) if name in self.folders else None

    def start(self) -> int:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name=f"hostile-imap:{self.port}", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop listening and cut every open connection."""
        self.stopped.set()
        if self._listener is not None:
            self._listener.close()
        with self.lock:
            live, self._live = list(self._live), set()
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HostileImap:
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self.stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(self.timeout)
            with self.lock:
                self._live.add(sock)
            threading.Thread(target=_Connection(self, sock).serve, daemon=True).start()

    def forget(self, sock: socket.socket) -> None:
        with self.lock:
            self._live.discard(sock)


class _Connection:
    """One client: reads tagged commands, answers them from the server's script."""

    def __init__(self, server: HostileImap, sock: socket.socket) -> None:
        self.server, self.sock = server, sock
        self.reader = sock.makefile("rb")
        self.selected: tuple[str, Folder] | None = None

    def serve(self) -> None:
        try:
            self.send(f"* OK [CAPABILITY {CAPABILITIES}] hostile IMAP ready\r\n")
            while not self.server.stopped.is_set():
                command = self.read_command()
                if command is None:
                    return
                with self.server.lock:
                    self.server.log.append(command.decode("latin-1").rstrip("\r\n"))
                words = _tokens(command.rstrip(b"\r\n"))
                if len(words) < 2 or not isinstance(words[0], str) or not isinstance(words[1], str):
                    self.send("* BAD malformed command\r\n")
                    continue
                tag, name, args = words[0], words[1].upper(), words[2:]
                if name == "UID" and args and isinstance(args[0], str):
                    name, args = "UID " + args[0].upper(), args[1:]
                handler = getattr(self, "do_" + name.replace(" ", "_"), None)
                if handler is None:
                    self.send(f"{tag} BAD unknown command {name}\r\n")
                    continue
                try:
                    if handler(tag, args) is False:
                        return
                except (LookupError, ValueError, TypeError) as exc:  # arguments this server cannot read
                    self.send(f"{tag} BAD {exc.__class__.__name__}\r\n")
        except OSError:
            pass  # the client went away, the server stopped, or a timeout ran out
        finally:
            self.server.forget(self.sock)
            self.sock.close()

    def read_command(self) -> bytes | None:
        """One command, with any literals (``{n}``) it carries read in place."""
        data = b""
        while True:
            line = self.reader.readline(1 << 20)
            if not line:
                return None
            data += line
            match = _LITERAL_AT_END.search(line)
            if not match:
                return data
            if not match.group(2):
                self.send("+ go ahead\r\n")
            data += self.reader.read(int(match.group(1)))

    def send(self, data: str | bytes) -> None:
        self.sock.sendall(data.encode("latin-1") if isinstance(data, str) else data)

    # -- commands ------------------------------------------------------------------------------

    def do_CAPABILITY(self, tag: str, args: list) -> None:
        self.send(f"* CAPABILITY {self.server.capabilities}\r\n{tag} OK CAPABILITY done\r\n")

    def do_NOOP(self, tag: str, args: list) -> None:
        self.send(f"{tag} OK NOOP done\r\n")

    def do_LOGIN(self, tag: str, args: list) -> None:
        user, password = (_text(a) for a in (args + ["", ""])[:2])
        s = self.server
        if (s.username is not None and user != s.username) or (s.password is not None and password != s.password):
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
        else:
            self.send(f"{tag} OK [CAPABILITY {self.server.capabilities}] logged in\r\n")

    def do_LOGOUT(self, tag: str, args: list) -> bool:
        self.send(f"* BYE logging out\r\n{tag} OK LOGOUT done\r\n")
        return False

    def do_ENABLE(self, tag: str, args: list) -> None:
        self.send(f"* ENABLED\r\n{tag} OK nothing enabled\r\n")

    def do_ID(self, tag: str, args: list) -> None:
        self.send(f'* ID ("name" "hostile")\r\n{tag} OK ID done\r\n')

    def do_LIST(self, tag: str, args: list) -> None:
        for name in list(self.server.folders):
            self.send(b'* LIST (\\HasNoChildren) "/" ' + _quoted(utf7_encode(name)) + b"\r\n")
        self.send(f"{tag} OK LIST done\r\n")

    def do_SELECT(self, tag: str, args: list, readonly: bool = False) -> None:
        found = self.server.folder(_mailbox(args))
        if found is None:
            self.selected = None
            self.send(f"{tag} NO [NONEXISTENT] no such mailbox\r\n")
            return
        self.selected = found
        folder = found[1]
        self.send(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
            f"* OK [PERMANENTFLAGS ()] read-only here\r\n* {len(folder.messages)} EXISTS\r\n* 0 RECENT\r\n"
            f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid\r\n* OK [UIDNEXT {folder.next_uid()}] next UID\r\n"
            f"{tag} OK [{'READ-ONLY' if readonly else 'READ-WRITE'}] opened\r\n"
        )

    def do_EXAMINE(self, tag: str, args: list) -> None:
        self.do_SELECT(tag, args, readonly=True)

    def do_CLOSE(self, tag: str, args: list) -> None:
        self.selected = None
        self.send(f"{tag} OK CLOSE done\r\n")

    do_UNSELECT = do_CLOSE

    def do_STATUS(self, tag: str, args: list) -> None:
        found = self.server.folder(_mailbox(args))
        if found is None:
            self.send(f"{tag} NO [NONEXISTENT] no such mailbox\r\n")
            return
        name, folder = found
        values = {"MESSAGES": len(folder.messages), "UIDNEXT": folder.next_uid(), "UIDVALIDITY": folder.uidvalidity,
                  "UNSEEN": 0, "RECENT": 0}
        wanted = args[1] if len(args) > 1 and isinstance(args[1], list) else []
        items = " ".join(f"{w.upper()} {values[w.upper()]}" for w in wanted if str(w).upper() in values)
        self.send(b"* STATUS " + _quoted(utf7_encode(name)) + f" ({items})\r\n{tag} OK STATUS done\r\n".encode())

    def do_IDLE(self, tag: str, args: list) -> bool:
        self.send("+ idling\r\n")
        self.sock.settimeout(None)  # waits as long as the client likes; stop() still cuts it
        line = self.reader.readline(1024)
        self.sock.settimeout(self.server.timeout)
        if line.strip().upper() != b"DONE":
            return False
        self.send(f"{tag} OK IDLE terminated\r\n")
        return True

    def do_SEARCH(self, tag: str, args: list, by_uid: bool = False) -> None:
        if self.selected is None:
            self.send(f"{tag} BAD no mailbox selected\r\n")
            return
        picked = _numbered(self.selected[1])
        words = [str(a).upper() for a in args if isinstance(a, str)]
        while words:
            word = words.pop(0)
            if word == "UID" and words:
                uids = words.pop(0)
                picked = [(n, uid) for n, uid in picked if _in_set(uid, uids, self.selected[1])]
            elif word[:1].isdigit() or word[:1] == "*":
                picked = [(n, uid) for n, uid in picked if _in_set(n, word, None, len(self.selected[1].messages))]
            elif word != "ALL":
                self.send(f"{tag} BAD search key {word} not supported here\r\n")
                return
        found = " ".join(str(uid if by_uid else n) for n, uid in picked)
        self.send(f"* SEARCH{' ' if found else ''}{found}\r\n{tag} OK SEARCH done\r\n")

    def do_UID_SEARCH(self, tag: str, args: list) -> None:
        self.do_SEARCH(tag, args, by_uid=True)

    def do_FETCH(self, tag: str, args: list, by_uid: bool = False) -> None:
        if self.selected is None or len(args) < 2:
            self.send(f"{tag} BAD no mailbox selected, or no items\r\n")
            return
        name, folder = self.selected
        items = [str(i).upper() for i in (args[1] if isinstance(args[1], list) else [args[1]])]
        if len(args) > 2 or not all(_known_item(i) for i in items):
            self.send(f"{tag} BAD fetch items or modifiers not supported here\r\n")
            return
        if by_uid and "UID" not in items:
            items.insert(0, "UID")
        picked = [(n, uid) for n, uid in _numbered(folder)
                  if _in_set(uid if by_uid else n, str(args[0]), folder if by_uid else None, len(folder.messages))]
        wants_body = any(i.startswith(("BODY", "RFC822")) and i != "RFC822.SIZE" for i in items)
        failing = next((uid for _, uid in picked if wants_body and uid in folder.quirks
                        and folder.quirks[uid].fail_batch_with), None)
        for number, uid in picked:
            if failing is not None and uid >= failing:
                break
            self.answer(number, uid, name, folder, items)
        if failing is not None:
            self.send(f"{tag} NO [SERVERBUG] {folder.quirks[failing].fail_batch_with}\r\n")
        else:
            self.send(f"{tag} OK FETCH done\r\n")

    def do_UID_FETCH(self, tag: str, args: list) -> None:
        self.do_FETCH(tag, args, by_uid=True)

    def answer(self, number: int, uid: int, name: str, folder: Folder, items: list[str]) -> None:
        """One ``* n FETCH (...)`` line, its body literals sent (or streamed, or trickled) in place."""
        raw, quirk = folder.messages[uid], folder.quirks.get(uid) or Quirk()
        size = quirk.size_lie if quirk.size_lie is not None else len(raw)
        simple = {"UID": f"UID {uid}", "FLAGS": f"FLAGS ({' '.join(folder.flags.get(uid, ()))})",
                  "INTERNALDATE": f"INTERNALDATE {INTERNALDATE}", "RFC822.SIZE": f"RFC822.SIZE {size}"}
        parts = [simple[item] for item in items if item in simple]
        self.send(f"* {number} FETCH ({' '.join(parts)}")
        for item in items:
            if item in simple:
                continue
            label = "RFC822" if item == "RFC822" else "BODY[HEADER]" if "HEADER" in item else "BODY[]"
            if label == "BODY[HEADER]":  # headers are always served as they are
                self.send(f"{' ' if parts else ''}{label} {{{len(_header(raw))}}}\r\n".encode() + _header(raw))
            elif self.omits(name, uid, quirk):
                continue
            else:
                length = len(raw) if quirk.literal_size is None else quirk.literal_size
                self.send(f"{' ' if parts else ''}{label} {{{length}}}\r\n")
                self.stream(iter([raw]) if quirk.literal_size is None else _filler(length), quirk.trickle)
            parts.append(label)
        self.send(")\r\n")

    def omits(self, name: str, uid: int, quirk: Quirk) -> bool:
        """Count a whole body asked for; True when the script says to leave it out this time."""
        with self.server.lock:
            self.server.body_fetches[(name, uid)] += 1
            omit = quirk.omit_body is True or (quirk.omit_body is not False and quirk.omitted < quirk.omit_body)
            if omit:
                quirk.omitted += 1
            return omit

    def stream(self, chunks: Iterator[bytes], rate: float | None) -> None:
        """Send the chunks at full speed, or ``rate`` bytes per second in small steps."""
        for chunk in chunks:
            if rate is None:
                self.send(chunk)
                continue
            step = max(1, int(rate / 10))
            for start in range(0, len(chunk), step):
                if self.server.stopped.wait(step / rate):
                    raise OSError("server stopped")
                self.send(chunk[start:start + step])


# -- parsing helpers ----------------------------------------------------------------------------

def _tokens(data: bytes) -> list:
    """A command line as atoms and strings (str) and parenthesised lists; literals read in place."""
    stack: list[list] = [[]]
    i = 0
    while i < len(data):
        c = data[i:i + 1]
        if c == b" ":
            i += 1
        elif c == b"(":
            stack.append([])
            i += 1
        elif c == b")":
            inner = stack.pop() if len(stack) > 1 else []
            stack[-1].append(inner)
            i += 1
        elif c == b'"':
            i += 1
            value = bytearray()
            while i < len(data) and data[i:i + 1] != b'"':
                if data[i:i + 1] == b"\\":
                    i += 1
                value += data[i:i + 1]
                i += 1
            stack[-1].append(value.decode("latin-1"))
            i += 1
        elif c == b"{" and (match := re.match(rb"\{(\d+)\+?\}\r?\n", data[i:])):
            start = i + match.end()
            stack[-1].append(data[start:start + int(match.group(1))].decode("latin-1"))
            i = start + int(match.group(1))
        else:
            start, depth = i, 0
            while i < len(data) and (depth or data[i:i + 1] not in (b" ", b"(", b")")):
                depth += {b"[": 1, b"]": -1}.get(data[i:i + 1], 0)
                i += 1
            stack[-1].append(data[start:i].decode("latin-1"))
    return stack[0]


def _text(token: object) -> str:
    return token.encode("latin-1").decode("utf-8", "replace") if isinstance(token, str) else ""


def _mailbox(args: list) -> str:
    return utf7_decode(args[0].encode("latin-1")) if args and isinstance(args[0], str) else ""


def _quoted(name: bytes) -> bytes:
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _numbered(folder: Folder) -> list[tuple[int, int]]:
    return list(enumerate(sorted(folder.messages), start=1))


def _in_set(value: int, sequence_set: str, folder: Folder | None, count: int = 0) -> bool:
    """Whether ``value`` is in a sequence set (``1:*``, ``3,7,9:12``); ``*`` is the highest UID
    of ``folder``, or ``count`` for message numbers."""
    star = max(folder.messages, default=0) if folder is not None else count
    for piece in sequence_set.split(","):
        low, _, high = piece.partition(":")
        a = star if low == "*" else int(low)
        b = a if not high else (star if high == "*" else int(high))
        if min(a, b) <= value <= max(a, b):
            return True
    return False


def _known_item(item: str) -> bool:
    return item in ("UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "RFC822") or item in (
        "BODY[]", "BODY.PEEK[]", "BODY[HEADER]", "BODY.PEEK[HEADER]")


def _header(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw[: end + 4] if end >= 0 else raw


def _filler(size: int) -> Iterator[bytes]:
    """``size`` bytes of header-like filler, a chunk at a time."""
    head = b"From: filler@example.org\r\nSubject: filler\r\n\r\n"[:size]
    yield head
    left = size - len(head)
    while left > 0:
        chunk = _FILLER[: min(left, _CHUNK)]
        left -= len(chunk)
        yield chunk
