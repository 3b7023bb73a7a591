"""A throwaway Dovecot IMAP server on 127.0.0.1, for the test suite and the ``demo`` command.

The ingestion service has to be exercised against a real IMAP server (TLS, IDLE, CONDSTORE,
folders, broken messages), not a mock. Everything Dovecot needs -- config, certificate, sockets,
state, logs and mail -- lives in one directory owned by :class:`DovecotServer`, so nothing in
/etc/dovecot, /run, /var/lib or syslog is touched and several servers can run side by side.
"""

from __future__ import annotations

import grp
import itertools
import os
import pwd
import re
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from imapclient.imap_utf7 import encode as imap_utf7_encode

from .server_files import require_searchable, self_signed_certificate
from .server_process import ServerProcess, free_ports

_INSTALL_HINT = "Dovecot is not installed: run `apt-get install dovecot-imapd` as root"
_MAILDIR_FLAGS = frozenset("DFPRST")  # Draft Flagged Passed Replied Seen Trashed
_NAME_RE = re.compile(r"[a-z0-9_-][a-z0-9._-]*")  # Dovecot lowercases login names
_MAX_BASE_DIR_LEN = 80  # + "/token-login/imap-urlauth" must fit a 108-byte socket path
_delivery_counter = itertools.count(1)  # keeps maildir file names unique within this process

# Braces are doubled for str.format. A block's "{" must end its line in dovecot.conf.
_CONFIG = """\
instance_name = futurnal-{instance}
base_dir = {base_dir}
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
debug_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login{oauth2_mechanisms}
auth_verbose = yes
{failure_delay}
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:~/Maildir
{capabilities}
{limits}
namespace inbox {{
  inbox = yes
  separator = /
  # Special-use attributes (RFC 6154) as real servers announce them, for folder-selection tests.
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Archive {{
    special_use = \\Archive
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {root}/users/%n
  {password_mechanisms}
}}
{oauth2_passdb}userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%n
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
service imap-login {{
  {no_chroot}
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  {no_chroot}
  unix_listener anvil-auth-penalty {{
    {penalty_path}
  }}
}}
service ipc {{
  {no_chroot}
}}
service imap-urlauth-login {{
  {no_chroot}
}}
"""


class DovecotUnavailable(RuntimeError):
    """Raised when no Dovecot binary exists, so callers can skip instead of crash."""


@dataclass(frozen=True)
class OAuth2Passdb:
    """Bearer-token logins (SASL XOAUTH2 / OAUTHBEARER) checked by RFC 7662 token introspection.

    Dovecot asks the authorization server about every token (nothing cached), so a revoked or
    expired token is refused at once, as a real provider's IMAP server would.

    Attributes:
        introspection_url: ``http://CLIENT:SECRET@HOST:PORT/token/introspection``; the client is
            the one the provider lets introspect access tokens.
        openid_configuration_url: The issuer's ``/.well-known/openid-configuration``, which
            Dovecot names to clients in its failure answer.
        scope: A scope the token must carry, or ``""`` for none.
        username_attribute: The introspection field that holds the login name.
        mechanisms: The SASL mechanisms to offer for bearer tokens.
    """

    introspection_url: str
    openid_configuration_url: str = ""
    scope: str = ""
    username_attribute: str = "email"
    mechanisms: str = "xoauth2 oauthbearer"


@dataclass(frozen=True)
class DovecotOptions:
    """Knobs that tests need to turn.

    Attributes:
        capabilities: Explicit ``imap_capability`` list, e.g. to hide IDLE or CONDSTORE and
            exercise the client's fallbacks. ``None`` keeps Dovecot's defaults.
        auth_failure_delay_off: Turn off the delay after a failed login and anvil's per-IP
            penalty; otherwise every wrong-password test slows the following logins by 2-15 s.
        oauth2: Also accept OAuth2 bearer tokens, validated by the given authorization server;
            ``None`` (the default) offers password logins only.
        max_connections: Room for this many IMAP connections at once (hundreds of mailboxes,
            each with a fetch and a watch connection). Each is its own ``imap`` process, and
            Dovecot's default process limit is 100. Also makes idling connections check for
            changes every second: past the kernel's 128 inotify instances per user, Dovecot
            falls back to that check (30 s by default), which would look like late mail.
            ``None`` keeps Dovecot's defaults.
    """

    capabilities: str | None = None
    auth_failure_delay_off: bool = True
    oauth2: OAuth2Passdb | None = None
    max_connections: int | None = None


class DovecotServer(ServerProcess):
    """One Dovecot master process serving password users from maildirs under ``root``.

    As root, mail belongs to ``nobody`` (Dovecot refuses uid 0 for mail processes) and the
    packaged ``dovenull``/``dovecot`` users run logins and internals; as any other user,
    everything runs as that user and chroots are switched off (they need root).

    The master passes SIGTERM on to its children itself, so it alone is sent it on stop.
    """

    host: str = "127.0.0.1"

    def __init__(self, root: Path, options: DovecotOptions = DovecotOptions()) -> None:
        """Prepare ``root`` (created if missing) without starting anything.

        Raises:
            DovecotUnavailable: If no Dovecot binary is installed; checked here so that a
                missing install fails before any set-up work.
            ValueError: If ``root`` contains characters that would break dovecot.conf.
        """
        binary = "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None
        self._binary = binary or shutil.which("dovecot")
        if self._binary is None:
            raise DovecotUnavailable(_INSTALL_HINT)
        self.root = Path(root).resolve()
        if re.search(r"[\s%\"<>{}$]", str(self.root)):  # would be mangled in dovecot.conf
            raise ValueError(f"Dovecot root must not contain spaces or %\"<>{{}}$: {self.root}")
        if options.capabilities is not None and re.search(r"[\r\n]", options.capabilities):
            raise ValueError("capabilities must be a single line")
        self.options = options
        self.imap_port = 0
        self.imaps_port = 0
        self._keep_ports = False
        self.cert_path = self.root / "cert.pem"
        self._users: dict[str, str] = {}
        self._base_dir = self.root / "run"  # sockets; moved to a short temp dir if too long
        self._is_root = os.geteuid() == 0
        if self._is_root:
            nobody = pwd.getpwnam("nobody")
            self._uid, self._gid = nobody.pw_uid, nobody.pw_gid
            self._login_user, self._internal_user = "dovenull", "dovecot"
            self._internal_group = "dovecot"
        else:
            self._uid, self._gid = os.geteuid(), os.getegid()
            self._login_user = self._internal_user = pwd.getpwuid(self._uid).pw_name
            self._internal_group = grp.getgrgid(self._gid).gr_name
        for path in (self.root, self.root / "home", self.root / "state", self.root / "users"):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)  # Dovecot's unprivileged processes must traverse these

    def add_user(self, name: str, password: str) -> None:
        """Create a password user, or change its password; works while Dovecot runs.

        Each user has its own passwd-file, ``users/<name>``. Dovecot re-reads one only if its
        mtime (whole seconds) or size changed, and stats it at most once a second. So the mtime
        is always moved forward, and changing a password on a running server waits for the
        next second (adding a user does not: its file is new to Dovecot).
        """
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"user name must match {_NAME_RE.pattern}: {name!r}")
        if not password or re.search(r"[:\r\n]", password):
            raise ValueError("password must be non-empty and contain no ':' or newline")
        changed = name in self._users
        self._users[name] = password
        self._make_dirs(self._maildir(name))
        path, tmp = self.root / "users" / name, self.root / "users" / f".{name}.tmp"
        old_mtime = int(path.stat().st_mtime) if path.exists() else 0
        tmp.write_text(f"{name}:{{PLAIN}}{password}\n", encoding="utf-8")
        tmp.chmod(0o640 if self._is_root else 0o600)
        if self._is_root:  # the auth process runs as the internal user and must read it
            os.chown(tmp, 0, grp.getgrnam(self._internal_group).gr_gid)
        stamp = max(int(time.time()), old_mtime + 1)
        os.utime(tmp, (stamp, stamp))
        os.replace(tmp, path)
        if changed and self.running:
            time.sleep(1.01 - time.time() % 1.0)

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> None:
        """Write one message straight into a user's maildir, much faster than IMAP APPEND.

        The file goes to ``cur/`` under a Dovecot-style name carrying its size (``S=``), CRLF
        size (``W=``) and flags, so Dovecot indexes it on the next SELECT, NOOP or IDLE
        without reading it. Its mtime, which Dovecot reports as INTERNALDATE, comes from the
        Date header when that parses. UIDs follow delivery order.

        Args:
            user: A user created with :meth:`add_user`.
            raw: The complete message.
            folder: ``"INBOX"`` or a folder name; ``/`` or ``.`` separate hierarchy levels
                (stored in Maildir++ layout as ``.Parent.Child``).
            flags: Maildir flag letters from ``DFPRST``, e.g. ``"S"`` for ``\\Seen``.
        """
        if user not in self._users:
            raise ValueError(f"unknown user {user!r}: call add_user() first")
        if not set(flags) <= _MAILDIR_FLAGS:
            raise ValueError(f"flags must be letters from {''.join(sorted(_MAILDIR_FLAGS))}")
        folder_dir = self._maildir(user)
        if folder.upper() != "INBOX":
            parts = re.split(r"[./]", folder)
            if not all(parts):
                raise ValueError(f"invalid folder name: {folder!r}")
            folder_dir /= "." + ".".join(imap_utf7_encode(p).decode() for p in parts)
        self._make_dirs(folder_dir)
        now = time.time()  # names start with the time, and Dovecot assigns UIDs in name order
        host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
        unique = f"M{int(now % 1 * 1e6):06d}P{os.getpid()}Q{next(_delivery_counter)}"
        base = f"{int(now)}.{unique}.{host}"
        vsize = len(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        tmp = folder_dir / "tmp" / base
        tmp.write_bytes(raw)
        self._own(tmp)
        when = _date_header_time(raw, default=now)
        os.utime(tmp, (when, when))
        name = f"{base},S={len(raw)},W={vsize}:2,{''.join(sorted(set(flags)))}"
        os.replace(tmp, folder_dir / "cur" / name)  # atomic: Dovecot never sees half a file

    def start(self, timeout: float = 15.0) -> None:
        """Generate cert and config, launch ``dovecot -F`` and wait for an IMAP greeting.

        Raises:
            RuntimeError: If Dovecot exits or does not greet within ``timeout`` seconds (the
                message includes the tail of Dovecot's log), or cannot reach ``root``.
        """
        if self.running:
            return
        self._check_reachable()
        self._make_cert()
        self._write_oauth2_args()
        for attempt in range(3):  # a free port may be taken before Dovecot binds it
            if len(str(self._base_dir)) > _MAX_BASE_DIR_LEN:
                self._base_dir = Path(tempfile.mkdtemp(prefix="dovecot-"))
                self._base_dir.chmod(0o755)
            if not self._keep_ports:
                self.imap_port, self.imaps_port = free_ports(2)
            config = self.root / "dovecot.conf"
            config.write_text(self._config(), encoding="utf-8")
            # Its output goes to the log too, for errors before logging is set up.
            self._launch([self._binary or "dovecot", "-F", "-c", str(config)],
                         self.root / "dovecot.log")
            problem = self._wait_ready(self._greets, timeout)
            if problem is None:
                self._keep_ports = True  # a restart comes back where clients expect it
                return
            self.stop()
            if "in use" not in self._log_tail() or attempt == 2:
                raise RuntimeError(f"Dovecot {problem}; log tail:\n{self._log_tail()}")

    def stop(self) -> None:
        """Stop Dovecot: SIGTERM, then SIGKILL to its process group if it hangs. Idempotent.

        Children (imap, imap-login) that outlive the master for a moment are killed. Takes about
        a second: Dovecot 2.3's master sleeps 1 s on shutdown for its log process.
        """
        super().stop()
        if not self._base_dir.is_relative_to(self.root):
            shutil.rmtree(self._base_dir, ignore_errors=True)
            self._base_dir = self.root / "run"

    def _maildir(self, user: str) -> Path:
        return self.root / "home" / user / "Maildir"

    def _make_dirs(self, maildir: Path) -> None:
        """Create a maildir (and the home above it) owned by the mail user."""
        for path in (maildir.parent, maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
            if not path.is_dir():
                path.mkdir()
                self._own(path)
        if maildir.name.startswith(".") and not (maildir / "maildirfolder").exists():
            (maildir / "maildirfolder").touch()  # marks a Maildir++ subfolder
            self._own(maildir / "maildirfolder")

    def _own(self, path: Path) -> None:
        """Dirs 0755, files 0600, owned by the mail user: Dovecot renames and indexes them."""
        path.chmod(0o755 if path.is_dir() else 0o600)
        if self._is_root:
            os.chown(path, self._uid, self._gid)

    def _greets(self, deadline: float) -> str | None:
        """None once the IMAP port says ``* OK``, else what is still awaited."""
        try:
            with socket.create_connection((self.host, self.imap_port), timeout=1.0) as sock:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                if sock.recv(256).startswith(b"* OK"):
                    return None
        except OSError:
            pass
        return f"did not greet on {self.host}:{self.imap_port}"

    def _check_reachable(self) -> None:
        if self._is_root:
            require_searchable(self.root, "Dovecot's unprivileged processes")

    def _make_cert(self) -> None:
        self_signed_certificate(self.cert_path, self.root / "key.pem")
        self.cert_path.chmod(0o644)

    def _write_oauth2_args(self) -> None:
        """The oauth2 passdb's settings file; it holds the introspection secret, so 0640."""
        oauth2 = self.options.oauth2
        if oauth2 is None:
            return
        lines = [
            f"introspection_url = {oauth2.introspection_url}",
            "introspection_mode = post",
            "force_introspection = yes",
            f"username_attribute = {oauth2.username_attribute}",
            "active_attribute = active",
            "active_value = true",
        ]
        if oauth2.scope:
            lines.append(f"scope = {oauth2.scope}")
        if oauth2.openid_configuration_url:
            lines.append(f"openid_configuration_url = {oauth2.openid_configuration_url}")
        if any(re.search(r"[\r\n]", line) for line in lines):
            raise ValueError("OAuth2 passdb settings must be single lines")
        path = self.root / "oauth2.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path.chmod(0o640 if self._is_root else 0o600)
        if self._is_root:  # read by the auth process, which runs as the internal user
            os.chown(path, 0, grp.getgrnam(self._internal_group).gr_gid)

    def _oauth2_passdb(self) -> str:
        if self.options.oauth2 is None:
            return ""
        return (
            "passdb {\n  driver = oauth2\n"
            f"  mechanisms = {self.options.oauth2.mechanisms}\n"
            f"  args = {self.root}/oauth2.conf\n}}\n"
            # every login is checked with the provider: a revoked token must fail at once
            "auth_cache_size = 0\n"
        )

    def _config(self) -> str:
        """Render a complete dovecot.conf; nothing is inherited from /etc/dovecot."""
        opts = self.options
        return _CONFIG.format(
            instance=uuid.uuid4().hex[:12], root=self.root, base_dir=self._base_dir,
            uid=self._uid, gid=self._gid,
            login_user=self._login_user, internal_user=self._internal_user,
            internal_group=self._internal_group, imap_port=self.imap_port,
            imaps_port=self.imaps_port,
            no_chroot="" if self._is_root else "chroot =",
            capabilities=f"imap_capability = {opts.capabilities}" if opts.capabilities else "",
            limits=_limits(opts.max_connections),
            failure_delay="auth_failure_delay = 0" if opts.auth_failure_delay_off else "",
            # Without its anvil socket, auth cannot apply per-IP penalties.
            penalty_path="path = anvil-auth-penalty-off" if opts.auth_failure_delay_off else "",
            oauth2_mechanisms=f" {opts.oauth2.mechanisms}" if opts.oauth2 else "",
            # The password passdb must not be asked to check bearer tokens as passwords.
            password_mechanisms="mechanisms = plain login" if opts.oauth2 else "",
            oauth2_passdb=self._oauth2_passdb(),
        )

    def _log_tail(self, lines: int = 30) -> str:
        log = self.root / "dovecot.log"
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _limits(connections: int | None) -> str:
    if connections is None:
        return ""
    processes = connections + 100  # logins, auth, and the rest of Dovecot's own
    # The imap service has a process limit of its own (1024), whatever the default says.
    return (f"default_process_limit = {processes}\ndefault_client_limit = {4 * processes}\n"
            f"service imap {{\n  process_limit = {processes}\n}}\nmailbox_idle_check_interval = 1 secs")


def _date_header_time(raw: bytes, default: float) -> float:
    """Epoch seconds of the Date header, so INTERNALDATE looks like a real arrival time."""
    try:
        date = BytesHeaderParser().parsebytes(raw).get("Date")
        return parsedate_to_datetime(str(date)).timestamp() if date else default
    except (TypeError, ValueError, IndexError, OverflowError):
        return default
