"""The admin console: a running process's Unix socket, its JSON Lines protocol, and its clients."""

from .client import ConsoleClient, ConsoleError, ConsoleUnavailable, connect_if_running
from .command_specs import COMMANDS, STREAMS, CommandSpec, Param, args_from_words, command_spec
from .protocol import ProtocolError, Request, console_socket_path

__all__ = [
    "COMMANDS",
    "STREAMS",
    "CommandSpec",
    "ConsoleClient",
    "ConsoleError",
    "ConsoleUnavailable",
    "Param",
    "ProtocolError",
    "Request",
    "args_from_words",
    "command_spec",
    "connect_if_running",
    "console_socket_path",
]
