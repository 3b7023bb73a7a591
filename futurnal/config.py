"""Service settings: defaults, overridden by ``<data dir>/config.toml``, validated once at start."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .mail.fetch_plan import BatchLimits

__all__ = ["ConfigError", "ServiceSettings", "load_settings"]


class ConfigError(ValueError):
    """The configuration file is wrong; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Everything tunable, as one frozen object handed to each actor's constructor."""

    batch: BatchLimits = field(default_factory=BatchLimits)
    max_batches_in_flight: int = 2
    write_timeout_seconds: float = 120.0
    connect_timeout_seconds: float = 15.0
    read_timeout_seconds: float = 60.0
    #: Well under Gmail's 15 per account, which the user's other mail programs share.
    max_connections_per_mailbox: int = 4
    #: IDLE is ended and restarted this often (RFC 2177: servers may drop it after 29 minutes).
    idle_renew_seconds: float = 540.0
    #: How often a watched folder is polled when the server has no IDLE.
    poll_seconds: float = 60.0
    default_sync_interval_seconds: int = 300
    #: Scheduled syncs running at once, across all mailboxes (``imap sync`` is not counted).
    max_concurrent_syncs: int = 2
    max_restarts: int = 5
    restart_window_seconds: float = 60.0
    stop_timeout_seconds: float = 20.0
    redact_logs: bool = True


# config.toml section.key -> (settings attribute, type, minimum)
_KEYS: dict[str, tuple[str, type, float]] = {
    "sync.batch_messages": ("batch.max_messages", int, 1),
    "sync.batch_bytes": ("batch.max_bytes", int, 1024),
    "sync.batches_in_flight": ("max_batches_in_flight", int, 1),
    "sync.write_timeout_seconds": ("write_timeout_seconds", float, 1),
    "sync.interval_seconds": ("default_sync_interval_seconds", int, 1),
    "sync.max_concurrent": ("max_concurrent_syncs", int, 1),
    "network.connect_timeout_seconds": ("connect_timeout_seconds", float, 0.1),
    "network.read_timeout_seconds": ("read_timeout_seconds", float, 0.1),
    "network.max_connections_per_mailbox": ("max_connections_per_mailbox", int, 1),
    "watch.idle_renew_seconds": ("idle_renew_seconds", float, 1),
    "watch.poll_seconds": ("poll_seconds", float, 0.1),
    "supervision.max_restarts": ("max_restarts", int, 0),
    "supervision.restart_window_seconds": ("restart_window_seconds", float, 0.1),
    "supervision.stop_timeout_seconds": ("stop_timeout_seconds", float, 0.1),
    "logging.redact": ("redact_logs", bool, 0),
}


def load_settings(path: Path) -> ServiceSettings:
    """Read ``path`` if it exists; unknown keys and bad values are errors, not silently ignored."""
    settings = ServiceSettings()
    if not path.exists():
        return settings
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    for dotted, value in _flatten(document).items():
        if dotted not in _KEYS:
            raise ConfigError(f"{path}: unknown setting {dotted!r} (known: {', '.join(sorted(_KEYS))})")
        attribute, kind, minimum = _KEYS[dotted]
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: {dotted} must be true or false")
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or (kind is int and not isinstance(value, int)):
            raise ConfigError(f"{path}: {dotted} must be {'a whole number' if kind is int else 'a number'}")
        elif value < minimum:
            raise ConfigError(f"{path}: {dotted} must be at least {minimum:g}")
        settings = _set(settings, attribute, value)
    return settings


def _flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _set(settings: ServiceSettings, attribute: str, value: Any) -> ServiceSettings:
    if attribute.startswith("batch."):
        return replace(settings, batch=replace(settings.batch, **{attribute.split(".", 1)[1]: value}))
    assert attribute in {f.name for f in fields(settings)}
    return replace(settings, **{attribute: value})
