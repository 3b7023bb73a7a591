"""Service settings: defaults, then a TOML file, then the environment; validated once at start.

The file is ``<data dir>/config.toml`` (or ``run --config FILE``). Each of its settings can also
be set by an environment variable named ``FUTURNAL_<SECTION>_<KEY>`` in upper case, which wins
over the file: ``FUTURNAL_SYNC_BATCH_MESSAGES=50`` sets ``[sync] batch_messages``,
``FUTURNAL_LOGGING_REDACT=false`` sets ``[logging] redact``. Values are parsed as TOML scalars
(``50``, ``2.5``, ``true``), then checked like the file's. Variables are settings only when
their name starts with a known section (``FUTURNAL_SYNC_``, ``FUTURNAL_NETWORK_``,
``FUTURNAL_WATCH_``, ``FUTURNAL_SUPERVISION_``, ``FUTURNAL_LOGGING_``, ``FUTURNAL_ATTACHMENTS_``,
``FUTURNAL_STORE_``); an unknown key in a known
section is an error, like an unknown key in the file, and both suggest the nearest known key. So
is a variable whose section is a likely misspelling of one (``FUTURNAL_SYNK_BATCH_MESSAGES``).
The project's other ``FUTURNAL_`` variables (``FUTURNAL_HOME``, ``FUTURNAL_STAGE_CPU``) are left alone.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .attachments.settings import AttachmentSettings
from .imap.login_rate import DEFAULT_LOGIN_BURST, DEFAULT_LOGINS_PER_SECOND
from .parse.parse_pool import DEFAULT_MEMORY_MB
from .suggestions import closest
from .sync.fetch_plan import BatchLimits
from .sync.provider_holds import DEFAULT_OVERQUOTA_WAIT, DEFAULT_THROTTLE_PAUSE

__all__ = ["ConfigError", "ServiceSettings", "environment_variable", "load_settings"]


class ConfigError(ValueError):
    """The configuration file is wrong; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Everything tunable, as one frozen object handed to each actor's constructor."""

    batch: BatchLimits = field(default_factory=BatchLimits)
    max_batches_in_flight: int = 2
    write_timeout_seconds: float = 120.0
    #: Parser worker processes per syncing mailbox (at least one: no message is parsed in the
    #: service's own process, where no time or memory limit could stop it).
    parse_workers: int = 2
    #: A message whose parsing takes longer is quarantined (its worker is killed and replaced).
    parse_timeout_seconds: float = 60.0
    #: Address-space cap of each parser process; a message that needs more is quarantined.
    parse_memory_mb: int = DEFAULT_MEMORY_MB
    connect_timeout_seconds: float = 15.0
    #: Longest wait for any byte from the server, and the base of every command's deadline.
    read_timeout_seconds: float = 60.0
    #: A command may also take as long as its data needs at this rate, and no longer.
    min_transfer_bytes_per_second: float = 8192.0
    #: Well under Gmail's 15 per account, which the user's other mail programs share.
    max_connections_per_mailbox: int = 4
    #: New connections to one server host, across mailboxes: at most this many logins a second
    #: (0: no limit) ...
    logins_per_second_per_host: float = DEFAULT_LOGINS_PER_SECOND
    #: ... after this many at once on a host that was quiet.
    login_burst_per_host: int = DEFAULT_LOGIN_BURST
    #: Gmail's OVERQUOTA names no end to its window: a mailbox waits this long, doubling while repeated.
    overquota_wait_seconds: float = DEFAULT_OVERQUOTA_WAIT
    #: Gmail's THROTTLED: the first pause between smaller batches, doubling while it repeats.
    throttle_pause_seconds: float = DEFAULT_THROTTLE_PAUSE
    #: IDLE is ended and restarted this often (RFC 2177: servers may drop it after 29 minutes).
    idle_renew_seconds: float = 540.0
    #: How often a watched folder is polled when the server has no IDLE.
    poll_seconds: float = 60.0
    #: Several watched folders share one connection by IMAP NOTIFY where the server has it.
    watch_notify: bool = True
    #: ``imap status`` flags a folder stale when its last successful sync is older than this.
    stale_after_seconds: float = 3600.0
    default_sync_interval_seconds: int = 300
    #: Scheduled syncs running at once, across all mailboxes (``imap sync`` is not counted).
    max_concurrent_syncs: int = 2
    max_restarts: int = 5
    restart_window_seconds: float = 60.0
    stop_timeout_seconds: float = 20.0
    redact_logs: bool = True
    attachments: AttachmentSettings = field(default_factory=AttachmentSettings)
    #: ``postgresql://...``: the element store and the control plane in one PostgreSQL shared by
    #: several processes (docs/postgres.md); empty: SQLite and files in the data directory.
    store_url: str = ""
    #: With a shared store: how long a mailbox's lease lasts without renewal (takeover time).
    lease_seconds: float = 20.0
    #: With a shared store: the most mailboxes this process runs (0: its share, without limit).
    max_mailboxes: int = 0


# config.toml section.key -> (settings attribute, type, minimum)
_KEYS: dict[str, tuple[str, type, float]] = {
    "sync.batch_messages": ("batch.max_messages", int, 1),
    "sync.batch_bytes": ("batch.max_bytes", int, 1024),
    "sync.batches_in_flight": ("max_batches_in_flight", int, 1),
    "sync.write_timeout_seconds": ("write_timeout_seconds", float, 1),
    "sync.max_message_bytes": ("batch.max_message_bytes", int, 1024),
    "sync.newest_first": ("batch.newest_first", bool, 0),
    "sync.parse_workers": ("parse_workers", int, 1),
    "sync.parse_timeout_seconds": ("parse_timeout_seconds", float, 1),
    "sync.parse_memory_mb": ("parse_memory_mb", int, 128),
    "sync.interval_seconds": ("default_sync_interval_seconds", int, 1),
    "sync.max_concurrent": ("max_concurrent_syncs", int, 1),
    "network.connect_timeout_seconds": ("connect_timeout_seconds", float, 0.1),
    "network.read_timeout_seconds": ("read_timeout_seconds", float, 0.1),
    "network.min_transfer_bytes_per_second": ("min_transfer_bytes_per_second", float, 1),
    "network.max_connections_per_mailbox": ("max_connections_per_mailbox", int, 1),
    "network.logins_per_second_per_host": ("logins_per_second_per_host", float, 0),
    "network.login_burst_per_host": ("login_burst_per_host", int, 1),
    "network.overquota_wait_seconds": ("overquota_wait_seconds", float, 1),
    "network.throttle_pause_seconds": ("throttle_pause_seconds", float, 0),
    "watch.idle_renew_seconds": ("idle_renew_seconds", float, 1),
    "watch.poll_seconds": ("poll_seconds", float, 0.1),
    "watch.notify": ("watch_notify", bool, 0),
    "watch.stale_after_seconds": ("stale_after_seconds", float, 1),
    "supervision.max_restarts": ("max_restarts", int, 0),
    "supervision.restart_window_seconds": ("restart_window_seconds", float, 0.1),
    "supervision.stop_timeout_seconds": ("stop_timeout_seconds", float, 0.1),
    "logging.redact": ("redact_logs", bool, 0),
    "attachments.max_bytes": ("attachments.max_bytes", int, 0),
    "attachments.timeout_seconds": ("attachments.timeout_seconds", float, 0.1),
    "attachments.memory_mb": ("attachments.memory_mb", int, 64),
    "attachments.workers": ("attachments.workers", int, 1),
    "attachments.keep_blobs": ("attachments.keep_blobs", bool, 0),
    "attachments.max_text_chars": ("attachments.max_text_chars", int, 0),
    "attachments.files_per_child": ("attachments.files_per_child", int, 1),
    "store.url": ("store_url", str, 0),
    "store.lease_seconds": ("lease_seconds", float, 3),
    "store.max_mailboxes": ("max_mailboxes", int, 0),
}

# ``FUTURNAL_`` variables of the project that are not settings, so never taken for a misspelt one.
_NOT_SETTINGS = ("FUTURNAL_HOME", "FUTURNAL_STAGE_CPU", "FUTURNAL_SECRETS_", "FUTURNAL_FAULT_RETRY_SECONDS",
                 "FUTURNAL_TEST_")


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """Read ``path`` if it exists, then the ``FUTURNAL_<SECTION>_<KEY>`` overrides in ``environ``
    (default ``os.environ``); unknown keys and bad values are errors, not silently ignored."""
    settings = ServiceSettings()
    if path.exists():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read: {exc}") from None
        for dotted, value in _flatten(document).items():
            settings = _apply(settings, str(path), dotted, dotted, value)
    for name, dotted, value in _environment_overrides(os.environ if environ is None else environ):
        settings = _apply(settings, f"environment variable {name}", dotted, None, value)
    return settings


def environment_variable(dotted: str) -> str:
    """The environment variable that overrides ``section.key``."""
    return "FUTURNAL_" + dotted.replace(".", "_").upper()


_SECTIONS = sorted({key.split(".", 1)[0] for key in _KEYS}, key=len, reverse=True)


def _environment_overrides(environ: Mapping[str, str]) -> list[tuple[str, str, Any]]:
    overrides = []
    for name in sorted(environ):
        dotted = _setting_named(name)
        if dotted is not None:
            overrides.append((name, dotted, _parse_scalar(environ[name])))
    return overrides


def _setting_named(name: str) -> str | None:
    """The ``section.key`` a ``FUTURNAL_`` variable names, None for one that is no setting. A
    variable whose first word misspells a section (``FUTURNAL_SYNK_...``) is meant as one: an error."""
    for section in _SECTIONS:
        prefix = f"FUTURNAL_{section.upper()}_"
        if name.startswith(prefix):
            return f"{section}.{name[len(prefix):].lower()}"
    if not name.startswith("FUTURNAL_") or name.startswith(_NOT_SETTINGS):
        return None
    word, _, rest = name.removeprefix("FUTURNAL_").lower().partition("_")
    meant = closest(word, _SECTIONS)
    if meant is None:
        return None
    raise ConfigError(f"environment variable {name}: unknown setting (no section {word!r})"
                      f"{_suggestion(f'{meant}.{rest}', as_variable=True)}")


def _parse_scalar(text: str) -> Any:
    """``50`` -> 50, ``2.5`` -> 2.5, ``true`` -> True; anything else stays a string (and is refused)."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply(settings: ServiceSettings, where: str, dotted: str, key: str | None, value: Any) -> ServiceSettings:
    """``value`` checked and set; errors start with ``where`` and then name the ``key`` of a file
    (an environment variable's ``where`` names it already)."""
    if dotted not in _KEYS:
        named = "" if key is None else f" {key!r}"
        raise ConfigError(f"{where}: unknown setting{named}{_suggestion(dotted, as_variable=key is None)}")
    attribute, kind, minimum = _KEYS[dotted]
    subject = f"{where}: " if key is None else f"{where}: {key} "
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{subject}must be true or false, not {value!r}")
    elif kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{subject}must be a string, not {value!r}")
        if dotted == "store.url" and value and not value.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"{subject}must be a postgresql:// URL (or empty for the SQLite store), not {value!r}")
    elif not isinstance(value, (int, float)) or isinstance(value, bool) or (kind is int and not isinstance(value, int)):
        raise ConfigError(f"{subject}must be {'a whole number' if kind is int else 'a number'}, not {value!r}")
    elif value < minimum:
        raise ConfigError(f"{subject}must be at least {minimum:g}, not {value!r}")
    return _set(settings, attribute, value)


def _suggestion(dotted: str, as_variable: bool) -> str:
    def shown(key: str) -> str:
        return environment_variable(key) if as_variable else key

    close = closest(dotted, _KEYS)
    if close:
        return f"; did you mean {shown(close)!r}?"
    section = dotted.split(".", 1)[0]
    known = [key for key in _KEYS if key.startswith(f"{section}.")] or list(_KEYS)  # the section's, if known
    return f" (known: {', '.join(sorted(map(shown, known)))})"


def _flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _set(settings: ServiceSettings, attribute: str, value: Any) -> ServiceSettings:
    if "." in attribute:  # a nested settings object: batch.max_messages, attachments.workers
        group, name = attribute.split(".", 1)
        return replace(settings, **{group: replace(getattr(settings, group), **{name: value})})
    assert attribute in {f.name for f in fields(settings)}
    return replace(settings, **{attribute: value})
