"""A throwaway Cyrus IMAP 3.6 server on 127.0.0.1: the second real server for the integration tests.

Dovecot is not the only IMAP server our users have, and sync code that was only ever run against
one server ends up depending on its quirks. :class:`CyrusServer` mirrors
:class:`futurnal.demo.dovecot.DovecotServer`: config, certificate, sockets, databases, users and
mail all live in one directory it owns, so nothing system-wide is touched.

Cyrus comes from Debian 12's ``cyrus-common``/``cyrus-imapd`` packages unpacked (not installed:
they conflict with ``dovecot-imapd``) into :data:`CYRUS_DIR` by ``bin/install-cyrus``. Cyrus has
no maildir to write into, so :meth:`CyrusServer.deliver` appends over IMAP, as the user.

Differences from Dovecot worth knowing in tests:
    * The hierarchy separator is ``/`` and folders sit beside INBOX (``altnamespace``).
    * Cyrus refuses some malformed messages on APPEND (e.g. a header line without a colon): see
      :class:`MessageRejected` and :attr:`CyrusServer.rejected`. It also rewrites 8-bit bytes in
      headers to ``X``, so compare with what the server serves, not with what was delivered.
    * Cyrus logs only to syslog; the master's and daemons' stderr go to ``master.log``.
"""

from __future__ import annotations

import grp
import itertools
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from imapclient.imap_utf7 import encode as imap_utf7_encode

from futurnal.demo.server_files import require_searchable, self_signed_certificate
from futurnal.demo.server_process import NeverReady, ServerProcess, free_ports

CYRUS_DIR = Path("/opt/futurnal-test/cyrus")  # where bin/install-cyrus unpacks the packages
INSTALL_SCRIPT = "bin/install-cyrus"
_BIN = CYRUS_DIR / "usr/lib/cyrus/bin"
_INSTALL_HINT = (f"Cyrus IMAP is not installed in {CYRUS_DIR}: run `{INSTALL_SCRIPT}` as root "
                 "(it unpacks Debian's cyrus-imapd there, next to Dovecot)")
_FLAG_NAMES = {"D": r"\Draft", "F": r"\Flagged", "P": "$Forwarded", "R": r"\Answered",
               "S": r"\Seen", "T": r"\Deleted"}  # maildir letters, as DovecotServer takes them
_NAME_RE = re.compile(r"[a-z0-9_-][a-z0-9._-]*")  # Cyrus lowercases login names
_MAX_CONFIG_DIR_LEN = 80  # + "/socket/idle.<pid>" (imapd's IDLE sockets) must fit 108 bytes
_BATCH_MESSAGES = 32  # per MULTIAPPEND; also how many single APPENDs are pipelined at once
_BATCH_BYTES = 8 << 20
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_IMAPD_CONF = """\
servername: {servername}
configdirectory: {config_dir}
partition-default: {root}/spool
defaultpartition: default
cyrus_user: {user}
cyrus_group: {group}
syslog_prefix: futurnal-cyrus
altnamespace: yes
unixhierarchysep: yes
autocreate_quota: 0
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {root}/sasldb2
sasl_mech_list: PLAIN LOGIN
tls_server_cert: {root}/cert.pem
tls_server_key: {root}/key.pem
{extra}"""

# The master passes neither -C nor a search path to its children: absolute paths, -C everywhere.
# START runs (and finishes) before the services: recovery after an unclean stop, as Debian does.
_CYRUS_CONF = """\
START {{
  recover cmd="{bin}/ctl_cyrusdb -r -C {root}/imapd.conf"
}}
SERVICES {{
  imap cmd="{bin}/imapd -C {root}/imapd.conf" listen="127.0.0.1:{imap_port}" prefork=1
  imaps cmd="{bin}/imapd -s -C {root}/imapd.conf" listen="127.0.0.1:{imaps_port}" prefork=1
}}
DAEMON {{
  idled cmd="{bin}/idled -C {root}/imapd.conf"
}}
"""


class CyrusUnavailable(RuntimeError):
    """Raised when the unpacked Cyrus is missing, so callers can skip instead of crash."""


class MessageRejected(Exception):
    """Cyrus refused a message on APPEND, e.g. ``Message contains invalid header``.

    Attributes:
        user, folder: Where it was to be delivered.
        raw: The refused message.
        reason: The server's ``NO``/``BAD`` text.
    """

    def __init__(self, user: str, folder: str, raw: bytes, reason: str) -> None:
        super().__init__(f"Cyrus refused a message for {user} in {folder!r}: {reason}")
        self.user, self.folder, self.raw, self.reason = user, folder, raw, reason


@dataclass(frozen=True)
class CyrusOptions:
    """Knobs that tests need to turn.

    Attributes:
        suppress_capabilities: Capabilities Cyrus must not advertise, e.g. ``"IDLE CONDSTORE"``
            to exercise the client's fallbacks (Cyrus's ``suppress_capabilities``, written
            in the case Cyrus uses; ``IDLE`` is switched off with ``imapidlepoll: 0``).
        failed_login_pause_off: Answer a wrong password at once; Cyrus otherwise sleeps 3 s.
        imapd_conf: More imapd.conf settings, e.g. ``{"imapidlepoll": "1"}``.
    """

    suppress_capabilities: str | None = None
    failed_login_pause_off: bool = True
    imapd_conf: Mapping[str, str] = field(default_factory=dict)


class CyrusServer(ServerProcess):
    """One Cyrus master process serving sasldb password users from a spool under ``root``.

    As root, Cyrus runs as ``nobody`` (and ``root`` must be reachable by it); as any other user,
    as that user. IMAP and IMAPS listen on free ports of 127.0.0.1, plaintext LOGIN is allowed,
    and ``idled`` pushes IDLE notifications.
    """

    host: str = "127.0.0.1"
    # On stop, SIGTERM goes to the whole group, as the master itself does on SIGTERM. Once the
    # master has exited, its children get a moment to finish writing (a SIGKILL mid-write can
    # leave a mailbox that the next start refuses) before any that hang are killed.
    term_whole_group = True
    drain_timeout = 5.0

    def __init__(self, root: Path, options: CyrusOptions | None = None) -> None:
        """Prepare ``root`` (created if missing) without starting anything.

        Raises:
            CyrusUnavailable: If the unpacked Cyrus or ``saslpasswd2`` is missing.
            ValueError: If ``root`` or an option would break imapd.conf or cyrus.conf.
        """
        self.options = options or CyrusOptions()
        self._saslpasswd = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
        libs = sorted(CYRUS_DIR.glob("usr/lib/*/libcyrus_imap.so.0"))
        missing = [str(p) for p in (_BIN / "master", _BIN / "imapd", _BIN / "idled")
                   if not os.access(p, os.X_OK)]
        if missing or not libs:
            raise CyrusUnavailable(f"{_INSTALL_HINT} (missing: {(missing or ['libcyrus'])[0]})")
        if not os.access(self._saslpasswd, os.X_OK):
            raise CyrusUnavailable(f"saslpasswd2 is missing: {_INSTALL_HINT}")
        self._lib_dir = libs[0].parent
        self.root = Path(root).resolve()
        if re.search(r"[\s\"'\\{}$]", str(self.root)):  # cmd= in cyrus.conf is split on spaces
            raise ValueError(
                f"Cyrus root must not contain spaces, quotes, \\, {{}} or $: {self.root}")
        for key, value in self.options.imapd_conf.items():
            if not re.fullmatch(r"[a-z0-9_-]+", key) or re.search(r"[\r\n]", value):
                raise ValueError(f"invalid imapd.conf setting {key!r}: {value!r}")
        if re.search(r"[\r\n]", self.options.suppress_capabilities or ""):
            raise ValueError("suppress_capabilities must be a single line")
        self.imap_port = 0
        self.imaps_port = 0
        self.cert_path = self.root / "cert.pem"
        self.rejected: list[MessageRejected] = []  # every message Cyrus refused, in order
        self.servername = f"futurnal-cyrus-{uuid.uuid4().hex[:12]}"  # also the SASL realm
        self._users: dict[str, str] = {}
        self._queued: list[tuple[str, str, bytes, str]] = []  # delivered before start()
        self._sessions: dict[str, _Session] = {}  # one logged-in connection per user
        self._lock = threading.Lock()
        self._config_dir = self.root / "config"  # or a short symlink to it, see start()
        self._is_root = os.geteuid() == 0
        if self._is_root:
            nobody = pwd.getpwnam("nobody")
            self._uid, self._gid = nobody.pw_uid, nobody.pw_gid
        else:
            self._uid, self._gid = os.geteuid(), os.getegid()
        self._user = pwd.getpwuid(self._uid).pw_name
        self._group = grp.getgrgid(self._gid).gr_name
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for sub in ("", "db", "proc", "socket", "log", "msg", "user", "quota", "lock"):
            self._make_dir(self.root / "config" / sub)
        self._make_dir(self.root / "spool")

    def add_user(self, name: str, password: str) -> None:
        """Create a password user, or change its password; works while Cyrus runs.

        The user's INBOX is created by Cyrus at the first login (``autocreate_quota``).
        """
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"user name must match {_NAME_RE.pattern}: {name!r}")
        if not password or re.search(r"[\r\n]", password):
            raise ValueError("password must be non-empty and contain no newline")
        sasldb = self.root / "sasldb2"
        done = subprocess.run(
            [self._saslpasswd, "-f", str(sasldb), "-u", self.servername, "-p", "-c", name],
            input=password.encode(), capture_output=True, timeout=30,
        )
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"saslpasswd2 failed for {name!r}: {reason}")
        self._own(sasldb, 0o600)
        with self._lock:
            self._users[name] = password
            session = self._sessions.pop(name, None)
        if session is not None:
            session.close()  # logged in with the old password; the next deliver logs in again

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> None:
        """Append one message as ``user``, creating ``folder`` (and its parents) if missing.

        Before :meth:`start`, messages are queued and appended at start, in order. UIDs follow
        delivery order; INTERNALDATE comes from the Date header when it parses.

        Args:
            user: A user created with :meth:`add_user`.
            raw: The complete message.
            folder: ``"INBOX"`` or a folder name; ``/`` separates hierarchy levels.
            flags: Maildir flag letters from ``DFPRST``, e.g. ``"S"`` for ``\\Seen``
                (``P`` becomes the ``$Forwarded`` keyword).

        Raises:
            MessageRejected: If the running server refuses the message. Refusals of queued
                messages are not raised by :meth:`start`; all refusals are in :attr:`rejected`.
        """
        if user not in self._users:
            raise ValueError(f"unknown user {user!r}: call add_user() first")
        if not set(flags) <= _FLAG_NAMES.keys():
            raise ValueError(f"flags must be letters from {''.join(sorted(_FLAG_NAMES))}")
        _folder_levels(folder)  # validates
        if not self.running:
            self._queued.append((user, folder, raw, flags))
            return
        refused = self._append(user, [(folder, raw, flags)])
        if refused:
            raise refused[0]

    def start(self, timeout: float = 20.0) -> None:
        """Write cert and config, launch the master, wait for both greetings, append the queue.

        Raises:
            RuntimeError: If the master exits or does not greet on both ports within
                ``timeout`` seconds (with the tail of ``master.log``), or cannot reach ``root``.
        """
        if self.running:
            return
        self._check_reachable()
        self._make_cert()
        for attempt in range(3):  # a free port may be taken before the master binds it
            if len(str(self._config_dir)) > _MAX_CONFIG_DIR_LEN:  # sockets are in config/socket
                short = Path(tempfile.mkdtemp(prefix="cyrus-"))
                short.chmod(0o755)
                self._config_dir = short / "config"  # removed again by stop()
                self._config_dir.symlink_to(self.root / "config")
            self.imap_port, self.imaps_port = free_ports(2)
            self._write_config()
            env = {**os.environ, "LD_LIBRARY_PATH": ":".join(
                filter(None, [str(self._lib_dir), os.environ.get("LD_LIBRARY_PATH")]))}
            env.pop("CYRUS_VERBOSE", None)
            log = self.root / "master.log"
            self._launch([str(_BIN / "master"), "-C", str(self.root / "imapd.conf"),
                          "-M", str(self.root / "cyrus.conf"),
                          "-p", str(self.root / "config" / "master.pid"), "-L", str(log)],
                         log, env=env, cwd=self.root)
            problem = self._wait_ready(self._greetings_probe(), timeout, interval=0.02)
            if problem is None:
                break
            self.stop()
            if "another server" not in problem or attempt == 2:
                raise RuntimeError(f"Cyrus {problem}; master.log tail:\n{self._log_tail()}")
        queued, self._queued = self._queued, []
        by_user: dict[str, list[tuple[str, bytes, str]]] = {}
        for user, folder, raw, flags in queued:
            by_user.setdefault(user, []).append((folder, raw, flags))
        for user, messages in by_user.items():
            self._append(user, messages)

    def stop(self) -> None:
        """Stop Cyrus: SIGTERM to the master's process group, SIGKILL what is left. Idempotent."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()
        super().stop()
        if self._config_dir != self.root / "config":
            shutil.rmtree(self._config_dir.parent, ignore_errors=True)  # only the symlink
            self._config_dir = self.root / "config"

    def _append(self, user: str, messages: list[tuple[str, bytes, str]]) -> list[MessageRejected]:
        """APPEND on the user's connection; returns (and records) the messages Cyrus refused.

        Cyrus commits (and fsyncs) every APPEND on its own, about 15 ms each, so runs of
        messages for one folder go in one MULTIAPPEND (about 1.5 ms a message). That is all or
        nothing, so a refused run is appended again one message at a time to find the culprits.
        """
        with self._lock:
            session = self._sessions.get(user)
            if session is None or session.closed:
                session = _Session(self.host, self.imap_port, user, self._users[user])
                self._sessions[user] = session
            for folder in dict.fromkeys(folder for folder, _raw, _flags in messages):
                session.ensure_folder(folder)
            refused = []
            for folder, batch in _batches(messages):
                mailbox = b"APPEND " + _quote_mailbox(folder) + b" "
                items = [_append_item(raw, flags) for raw, flags in batch]
                if len(items) > 1:
                    ((status, _text),) = session.send(folder, [mailbox + b" ".join(items)])
                    if status == "OK":
                        continue
                answers = session.send(folder, [mailbox + item for item in items])
                for (raw, _flags), (status, text) in zip(batch, answers):
                    if status != "OK":
                        refused.append(MessageRejected(user, folder, raw, f"{status} {text}"))
            self.rejected.extend(refused)
            return refused

    def _greetings_probe(self) -> Callable[[float], str | None]:
        """A readiness probe: None once both ports greeted as this server (IMAPS over verified
        TLS), one after the other, else the port still awaited.

        If the master cannot bind a port it only says so in syslog and keeps running, so a
        port whose listening socket is not the master's is reported at once.
        """
        assert self._proc is not None
        pid = self._proc.pid
        context = ssl.create_default_context(cafile=str(self.cert_path))
        pending: list[tuple[int, ssl.SSLContext | None]] = [
            (self.imap_port, None), (self.imaps_port, context)]

        def probe(deadline: float) -> str | None:
            while pending:
                port, tls = pending[0]
                listeners = _listening_inodes(port)
                if listeners and not listeners & _socket_inodes(pid):
                    raise NeverReady(f"port {port} is taken by another server")
                try:
                    greeting = _greeting(self.host, port, tls, deadline - time.monotonic())
                except (OSError, ssl.SSLError):
                    return f"did not greet on {self.host}:{port}"
                if self.servername.encode() not in greeting:
                    raise NeverReady(f"port {port} is taken by another server: {greeting[:100]!r}")
                pending.pop(0)
            return None

        return probe

    def _write_config(self) -> None:
        extra = dict(self.options.imapd_conf)
        if self.options.failed_login_pause_off:
            extra.setdefault("failedloginpause", "0")
        suppress = self.options.suppress_capabilities
        if suppress:
            extra.setdefault("suppress_capabilities", suppress)
            if "IDLE" in suppress.upper().split():  # IDLE ignores suppress_capabilities
                extra.setdefault("imapidlepoll", "0")  # 0 switches IDLE off altogether
        (self.root / "imapd.conf").write_text(_IMAPD_CONF.format(
            servername=self.servername, root=self.root, config_dir=self._config_dir,
            user=self._user, group=self._group,
            extra="".join(f"{key}: {value}\n" for key, value in extra.items()),
        ), encoding="utf-8")
        (self.root / "cyrus.conf").write_text(_CYRUS_CONF.format(
            bin=_BIN, root=self.root, imap_port=self.imap_port, imaps_port=self.imaps_port,
        ), encoding="utf-8")

    def _check_reachable(self) -> None:
        if self._is_root:
            require_searchable(self.root, "Cyrus (running as nobody)")

    def _make_cert(self) -> None:
        key_path = self.root / "key.pem"
        self_signed_certificate(self.cert_path, key_path)
        self._own(key_path, 0o600)  # imapd reads it as the Cyrus user
        self.cert_path.chmod(0o644)

    def _make_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._own(path, 0o750)

    def _own(self, path: Path, mode: int) -> None:
        path.chmod(mode)
        if self._is_root:
            os.chown(path, self._uid, self._gid)

    def _log_tail(self, lines: int = 30) -> str:
        log = self.root / "master.log"
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(empty: Cyrus logs to syslog)"


class _Session:
    """A minimal logged-in IMAP connection that pipelines commands.

    Messages go as LITERAL+ (no waiting for ``+``) and TCP_NODELAY is on, so a whole batch of
    commands costs one round trip; Cyrus itself does not set TCP_NODELAY.
    """

    def __init__(self, host: str, port: int, user: str, password: str) -> None:
        self._sock = socket.create_connection((host, port), timeout=30)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._file = self._sock.makefile("rb")
        self._tags = 0
        self._folders = {"INBOX"}
        self.closed = False
        self._read_line()  # greeting
        ((status, text),) = self.pipeline([b"LOGIN " + _quote(user) + b" " + _quote(password)])
        if status != "OK":
            self.close()
            raise RuntimeError(f"Cyrus rejected the login of {user!r}: {text}")

    def ensure_folder(self, folder: str) -> None:
        levels = _folder_levels(folder)
        wanted = ["/".join(levels[:n]) for n in range(1, len(levels) + 1)]
        missing = [name for name in wanted if name not in self._folders]
        for name, (status, text) in zip(missing, self.pipeline(
                [b"CREATE " + _quote_mailbox(name) for name in missing])):
            if status != "OK" and "ALREADYEXISTS" not in text.upper():
                raise RuntimeError(f"Cyrus refused to create folder {name!r}: {status} {text}")
            self._folders.add(name)

    def send(self, folder: str, commands: list[bytes]) -> list[tuple[str, str]]:
        """Pipeline commands for ``folder``; recreate it once if it was deleted meanwhile."""
        answers = self.pipeline(commands)
        if any("[TRYCREATE]" in text.upper() for _status, text in answers):
            self._folders.discard(folder)
            self.ensure_folder(folder)
            answers = self.pipeline(commands)
        return answers

    def pipeline(self, commands: Iterable[bytes]) -> list[tuple[str, str]]:
        """Send all commands at once, then return each one's (status, text), in order."""
        tags, data = [], []
        for command in commands:
            self._tags += 1
            tags.append(f"F{self._tags}".encode())
            data.append(tags[-1] + b" " + command + b"\r\n")
        try:
            self._sock.sendall(b"".join(data))
            answers: dict[bytes, tuple[str, str]] = {}
            while len(answers) < len(tags):
                line = self._read_line()
                tag, _, rest = line.partition(b" ")
                if tag in tags:
                    status, _, text = rest.partition(b" ")
                    answers[tag] = (status.decode("ascii", "replace").upper(),
                                    text.decode("utf-8", "replace"))
        except (OSError, EOFError):
            self.close()
            raise
        return [answers[tag] for tag in tags]

    def close(self) -> None:
        """LOGOUT and wait for Cyrus to confirm it (at most 2 s), so no write is in flight."""
        if self.closed:
            return
        self.closed = True
        try:
            self._sock.settimeout(2)
            self._sock.sendall(b"Z LOGOUT\r\n")
            while not self._read_line().startswith(b"Z "):
                pass
        except (OSError, EOFError):
            pass
        self._file.close()
        self._sock.close()

    def _read_line(self) -> bytes:
        line = self._file.readline(1 << 20)
        if not line.endswith(b"\n"):
            raise EOFError(f"Cyrus closed the connection or sent garbage: {line[:200]!r}")
        return line.rstrip(b"\r\n")


def _batches(
    messages: list[tuple[str, bytes, str]],
) -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    """Runs of consecutive messages for the same folder, each small enough for one command."""
    for folder, run in itertools.groupby(messages, key=lambda message: message[0]):
        batch: list[tuple[bytes, str]] = []
        size = 0
        for _folder, raw, flags in run:
            if batch and (len(batch) == _BATCH_MESSAGES or size + len(raw) > _BATCH_BYTES):
                yield folder, batch
                batch, size = [], 0
            batch.append((raw, flags))
            size += len(raw)
        yield folder, batch


def _append_item(raw: bytes, flags: str) -> bytes:
    """``(flags) "date" {n+}`` and the message as a LITERAL+: one message of an APPEND."""
    flag_list = " ".join(_FLAG_NAMES[letter] for letter in sorted(set(flags)))
    when = _date_header_time(raw)
    date = b"" if when is None else b' "' + _internaldate(when).encode() + b'"'
    return f"({flag_list})".encode() + date + f" {{{len(raw)}+}}\r\n".encode() + raw


def _folder_levels(folder: str) -> list[str]:
    if folder.upper() == "INBOX":
        return ["INBOX"]
    levels = folder.split("/")
    if not all(levels) or re.search(r"[\x00-\x1f\x7f*%]", folder):
        raise ValueError(f"invalid folder name: {folder!r}")
    return levels


def _quote_mailbox(name: str) -> bytes:
    if name.upper() == "INBOX":
        return b"INBOX"
    return _quote(imap_utf7_encode(name).decode("ascii"))


def _quote(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


def _greeting(host: str, port: int, context: ssl.SSLContext | None, timeout: float) -> bytes:
    with socket.create_connection((host, port), timeout=max(0.1, min(timeout, 2.0))) as sock:
        if context is None:
            return sock.recv(512)
        with context.wrap_socket(sock, server_hostname=host) as tls:
            return tls.recv(512)


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on 127.0.0.1:``port`` (empty if /proc is unreadable)."""
    inodes = set()
    try:
        with open("/proc/net/tcp", encoding="ascii") as table:
            next(table)
            for line in table:
                fields = line.split()  # sl local_address rem_address st ... uid timeout inode
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets a process has open."""
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _date_header_time(raw: bytes) -> datetime | None:
    """The Date header as an aware datetime, so INTERNALDATE looks like a real arrival time."""
    try:
        date = BytesHeaderParser().parsebytes(raw).get("Date")
        when = parsedate_to_datetime(str(date)) if date else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def _internaldate(when: datetime) -> str:
    """IMAP date-time, e.g. ``03-Jun-2024 10:01:00 +0000`` (no locale-dependent %b)."""
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "-" if minutes < 0 else "+"
    return (f"{when.day:02d}-{_MONTHS[when.month - 1]}-{when.year:04d} "
            f"{when:%H:%M:%S} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}")
