"""What every command gets: the data directory, the settings, and the stores it may open."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from futurnal.config import ConfigError, ServiceSettings, load_settings
from futurnal.logs.configure import redactor
from futurnal.storage.credentials import CredentialStore
from futurnal.storage.data_dir import DataDir
from futurnal.storage.element_store import ElementReader, ElementStore
from futurnal.storage.errors import StorageError, local_fault
from futurnal.storage.lock import DataDirLock
from futurnal.storage.registry import MailboxRecord, MailboxRegistry, UnknownMailbox
from futurnal.storage.sqlite import Progress
from futurnal.storage.stores import open_reader, open_store, sharing

from .output import ProgressBar, UserError, warning

if TYPE_CHECKING:
    from futurnal.admin import Admin
    from futurnal.admin.local import LocalAdmin
    from futurnal.system import ActorSystem

__all__ = ["CommandContext"]


@dataclass(frozen=True, slots=True)
class CommandContext:
    data_dir: DataDir
    debug: bool
    credentials: CredentialStore

    @classmethod
    def create(cls, root: Path, debug: bool, credentials: CredentialStore | None = None) -> CommandContext:
        """The context of a command on the data directory ``root``; with ``[store] url`` set, its
        control plane is the shared database's (a command's writes there are not fenced: it holds
        no lease; what a running process owns is changed through that process)."""
        layout = DataDir(root)
        try:
            url = load_settings(layout.root / "config.toml").store_url
        except ConfigError:
            url = ""  # the commands that read the settings say what is wrong with them
        layout = sharing(layout, url)
        return cls(layout, debug, credentials or CredentialStore(data_dir=layout))

    def check_data_dir(self, *, service: bool = False) -> None:
        """Before a command uses the data directory: one error when it cannot be (a file, read-only),
        and a warning for each directory of it that other users could enter (made 0700 where it is
        the user's own)."""
        if (problem := self.data_dir.unusable()) is not None:
            raise UserError(problem)
        for line in self.data_dir.make_private():
            warning(line, service=service)

    def settings(self) -> ServiceSettings:
        try:
            return load_settings(self.data_dir.root / "config.toml")
        except ConfigError as exc:
            raise UserError(str(exc)) from None

    @contextmanager
    def owned(self) -> Iterator[MailboxRegistry]:
        """The registry opened for writing, under the data directory's lock."""
        self.data_dir.ensure()
        lock = DataDirLock(self.data_dir.root)
        try:
            lock.acquire()
        except StorageError as exc:
            raise UserError(str(exc)) from None
        try:
            with self.data_dir.registry() as registry:
                yield registry
        finally:
            lock.release()

    def registry(self) -> MailboxRegistry:
        """Read-only access, safe beside a running process (its writes are atomic renames)."""
        return self.data_dir.registry(read_only=True)

    def mailbox(self, key: str) -> MailboxRecord:
        registry = self.registry()
        try:
            record = registry.get(key)
        except UnknownMailbox as exc:
            raise UserError(str(exc)) from None
        finally:
            registry.close()
        redactor.add_mailbox(record.id, record.email)
        return record

    def element_reader(self) -> ElementReader:
        """The element store for reading, safe beside a running process: the data directory's, or
        the shared one at ``[store] url``."""
        try:
            return open_reader(self.data_dir, url=self.settings().store_url, report=_say,
                               progress=_import_progress())
        except Exception as exc:  # noqa: BLE001 - what the user can act on is said, the rest goes up
            raise _store_error(exc) from None

    def element_store(self) -> ElementStore:
        """The element store for writing: only under :meth:`owned` (the data directory's lock)."""
        try:
            return open_store(self.data_dir, url=self.settings().store_url, report=_say, progress=_import_progress())
        except Exception as exc:  # noqa: BLE001 - what the user can act on is said, the rest goes up
            raise _store_error(exc) from None

    def admin(self) -> Admin:
        """Who does what changes the data directory: the running process, through its console,
        when one serves it (so there is only ever one writer), else this command itself."""
        from futurnal.admin import open_admin  # here: commands that only read need none of it

        return open_admin(self.data_dir, credentials=self.credentials, settings=self.settings,
                          actor_system=_actor_system, element_store=self.element_store)

    def local_admin(self) -> LocalAdmin:
        """This command's own admin, on the files: only where no process can serve the data directory."""
        from futurnal.admin.local import LocalAdmin

        return LocalAdmin(self.data_dir, credentials=self.credentials, settings=self.settings,
                          actor_system=_actor_system, element_store=self.element_store)


def _actor_system(data_dir: Path, *, settings: ServiceSettings, credentials: CredentialStore) -> ActorSystem:
    """The actor system of a command that syncs or watches by itself, no process serving the data directory."""
    from futurnal.system import ActorSystem  # here: most commands start no actors

    credentials.prepare()  # a missing or wrong key of the secrets file: one error now, not one per mailbox
    return ActorSystem(data_dir, settings=settings, credentials=credentials)


def _store_error(exc: Exception) -> Exception:
    """The element store could not be opened: a user's error saying why when it is one (a bad or
    unreachable database, a damaged file, no space), else the exception as it is."""
    if isinstance(exc, StorageError):
        return UserError(str(exc))
    if (fault := local_fault(exc, files_only=True)) is not None:
        return UserError(str(fault))
    return exc


def _say(line: str) -> None:
    print(f"futurnal-actors: {line}", file=sys.stderr)


def _import_progress() -> Progress:
    bar = ProgressBar("importing elements")

    def show(done: int, total: int) -> None:
        bar.update(done, total)
        if done >= total:
            bar.finish()

    return show
