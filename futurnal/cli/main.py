"""``futurnal-actors``: the command line."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence
from pathlib import Path

from futurnal.admin.errors import AdminError
from futurnal.console import ConsoleError, ConsoleUnavailable
from futurnal.imap.errors import MailError
from futurnal.logs.configure import LOG_FORMATS, configure_logging, redactor
from futurnal.process import stage_cpu
from futurnal.process.malloc_threshold import fix_mmap_threshold
from futurnal.storage.data_dir import default_data_dir
from futurnal.storage.errors import StorageError, local_fault

from .command_line import Parser, walk
from .completion import SHELLS
from .context import CommandContext
from .examples import EXAMPLES
from .output import UserError, error_line, for_stderr

__all__ = ["build_parser", "main"]

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR")

# Each command and the module that registers it, in the order `--help` lists them. Only the module
# of the command being run is imported (the others cost half a second of start-up together).
_COMMAND_MODULES = {
    "imap": "imap_commands",
    "elements": "elements_commands",
    "quarantine": "quarantine_commands",
    "consent": "privacy_commands",
    "audit": "privacy_commands",
    "run": "run_command",
    "ctl": "console_commands",
    "console": "console_commands",
    "top": "top_command",
    "demo": "demo_command",
}
_GLOBAL_OPTIONS_WITH_VALUES = ("--data-dir", "--log-level", "--log-format")

_UNREDACTED_WARNING = (
    "futurnal-actors: warning: logs are unredacted: they show e-mail addresses, subjects, file names and "
    "paths (secrets stay redacted). Use this for debugging only and do not share these logs."
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``command`` only that command's module loaded (the others
    are bare names, enough to parse a command line that runs ``command``)."""
    parser = Parser(
        prog="futurnal-actors",
        description="Privacy-first IMAP ingestion into a local element store.",
        epilog="Data directory: --data-dir, else $FUTURNAL_HOME, else $XDG_DATA_HOME/futurnal-actors. "
        "Exit status: 0 success, 1 failure (one-line reason on stderr), 2 bad usage. "
        "`futurnal-actors COMMAND --help` describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                        help=f"where state and elements live (default: {default_data_dir()})")
    parser.add_argument("--log-level", default="WARNING", type=str.upper, choices=LOG_LEVELS,
                        help="log verbosity on stderr (default: WARNING)")
    parser.add_argument("--log-format", default="text", choices=LOG_FORMATS,
                        help="log lines for people (text, the default) or one JSON object per line (json)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--log-unredacted", action="store_true",
                        help="for debugging only: show e-mail addresses, subjects, file names and home paths in "
                        "logs instead of tokens (secrets are always redacted); prints a warning")
    parser.add_argument("--no-redact", dest="log_unredacted", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = dict.fromkeys(_COMMAND_MODULES.values()) if command is None else [_COMMAND_MODULES[command]]
    for module in modules:
        importlib.import_module(f"{__package__}.{module}").register(commands)
    for name in _COMMAND_MODULES:
        if name not in commands.choices:
            commands.add_parser(name)
    completion = commands.add_parser(
        "completion", help="print a shell completion script (bash, zsh or fish)",
        description="Print a script that completes futurnal-actors' commands, options and their values in "
        "SHELL, made from this command line. Load it as its first lines say; make it again after an upgrade.",
    )
    completion.add_argument("shell", metavar="SHELL", choices=SHELLS, help=" or ".join(SHELLS))
    completion.set_defaults(handler=_completion)
    global_options = frozenset(parser._option_string_actions)
    for path, sub in walk(parser):
        if isinstance(sub, Parser):
            sub.examples = EXAMPLES.get(" ".join(path), ())
            sub.global_options = global_options if path else frozenset()
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("futurnal-actors")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _completion(args: argparse.Namespace, ctx: CommandContext | None = None) -> int:
    from .completion import completion_script

    sys.stdout.write(completion_script(build_parser(), args.shell))
    return 0


def _command_word(argv: Sequence[str]) -> str | None:
    """The command a command line runs, skipping the global options before it; None for help."""
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_OPTIONS_WITH_VALUES:
            next(words, None)
        elif word in ("-h", "--help"):
            return None
        elif not word.startswith("-"):
            return word if word in _COMMAND_MODULES else None
    return None


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    words = sys.argv[1:] if argv is None else list(argv)
    command = _command_word(words)
    args = build_parser(command).parse_args(words)
    if command is not None and not hasattr(args, "handler"):  # an abbreviated option fooled the scan
        args = build_parser().parse_args(words)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    fix_mmap_threshold()  # a long-running process must not keep every big message's memory
    stage_cpu.report_at_exit("service")  # FUTURNAL_STAGE_CPU (bin/benchmark) only
    args = _parse(argv)
    if args.command == "completion":  # for a shell's start-up files: no data directory, no configuration
        return _completion(args)
    configure_logging("DEBUG" if args.debug else args.log_level, redact_personal=not args.log_unredacted,
                      log_format=args.log_format)
    ctx = CommandContext.create((args.data_dir or default_data_dir()).expanduser(), args.debug)
    redactor.use_key_file(ctx.data_dir.log_key_path)  # the same token for the same address, run after run
    service = args.command == "run"  # its stderr is its log; every other command's is the user's terminal
    try:
        if args.data_dir is not None or not getattr(args, "makes_own_data_dir", False):
            ctx.check_data_dir(service=service)
        if not ctx.settings().redact_logs:  # `[logging] redact = false` in the config
            redactor.redact_personal = False
        if not redactor.redact_personal:
            print(_UNREDACTED_WARNING, file=sys.stderr)
        return int(args.handler(args, ctx))
    except (UserError, AdminError) as exc:
        return _fail(str(exc), exc.code, args.debug, service)
    except (StorageError, MailError, ConsoleUnavailable) as exc:
        return _fail(str(exc), 1, args.debug, service)
    except ConsoleError as exc:  # the running process refused what a command asked of it
        return _fail(exc.message, 1, args.debug, service)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, False, service)
    except BrokenPipeError:
        return 0  # `elements export | head`: the reader has all it wanted
    except Exception as exc:
        if (fault := local_fault(exc, path=ctx.data_dir.root, files_only=True)) is not None:  # a full disk, say
            return _fail(str(fault), 1, args.debug, service)
        return _fail(f"unexpected error: {exc.__class__.__name__}: {exc} (rerun with --debug for details)", 1,
                     args.debug, service)


def _fail(message: str, code: int, debug: bool, service: bool) -> int:
    """One line on stderr (a traceback too with --debug), :func:`~.output.error_line`: the user's own
    addresses and paths shown, except by the ``service`` (``run``), whose stderr is its log."""
    if debug:
        import traceback

        sys.stderr.write(for_stderr(traceback.format_exc(), service=service))
    print(error_line(message, service=service), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
