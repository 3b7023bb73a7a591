"""Examples at the end of each command's ``--help``: command lines, without the program's name,
by the words that lead to the command (``""`` is ``futurnal-actors`` itself).

Every command has some, and every one parses (``tests/unit/test_command_line.py``).
"""

from __future__ import annotations

__all__ = ["EXAMPLES"]

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "imap add --email me@example.org --host imap.example.org --consent --password-stdin < password.txt",
        "imap sync --all",
        "elements search 'invoice march'",
        "--data-dir /srv/mail run",
        "completion bash > ~/.local/share/bash-completion/completions/futurnal-actors",
    ),
    "imap": ("imap list", "imap status me@example.org", "imap sync --all --json"),
    "imap add": (
        "imap add --email me@example.org --host imap.example.org --consent --password-stdin < password.txt",
        "imap add --email me@example.org --host mail.example.org --port 143 --security starttls "
        "--folders 'INBOX,Archive/*' --exclude Archive/Spam --schedule '*/15 * * * *' --consent",
        "imap add --email me@gmail.com --provider gmail --client-id ID --client-secret-stdin --consent",
    ),
    "imap import": (
        "imap import mailboxes.toml",
        "imap import more.jsonl --consent --keep-going --json",
    ),
    "imap list": ("imap list", "imap list --json"),
    "imap status": ("imap status me@example.org", "imap status --all", "imap status me-example.org --json"),
    "imap sync": (
        "imap sync me@example.org",
        "imap sync me@example.org --folder INBOX --folder Archive --timeout 600",
        "imap sync --all --json",
    ),
    "imap folders": ("imap folders me@example.org", "imap folders me@example.org --json"),
    "imap schedule": (
        "imap schedule me@example.org",
        "imap schedule me@example.org '*/15 * * * *' --priority high",
        "imap schedule me@example.org @interval 600",
        "imap schedule me@example.org @manual",
    ),
    "imap budget": (
        "imap budget me@gmail.com",
        "imap budget me@gmail.com 1500",
        "imap budget me@example.org 0",
        "imap budget me@example.org --json",
    ),
    "imap start-monitor": ("imap start-monitor me@example.org", "imap start-monitor me@example.org --folder INBOX"),
    "imap reauth": (
        "imap reauth me@gmail.com",
        "imap reauth me@example.org --password-stdin < new-password.txt",
    ),
    "imap remove": ("imap remove me@example.org", "imap remove me@example.org --purge"),
    "elements": ("elements export | head -n 1", "elements search 'invoice march'",
                 "elements changes --consumer my-indexer"),
    "elements export": ("elements export > all.jsonl", "elements export --mailbox me@example.org --folder INBOX"),
    "elements changes": (
        "elements changes --since 1200",
        "elements changes --consumer my-indexer --limit 500",
        "elements changes --follow --mailbox me-example.org",
    ),
    "elements consumers": ("elements consumers", "elements consumers --remove my-indexer"),
    "elements search": (
        "elements search 'invoice march'",
        "elements search '\"quarterly report\" attachments:pdf' --after 2024-01-01 --limit 5",
        "elements search budget --from boss@example.org --json",
    ),
    "elements show": ("elements show 5f2c9e0a4b7d1e38c06a9b2f41d87e53",),
    "elements thread": ("elements thread 9a41c0de27b3f6150d8e2c7a64b19f3e",
                        "elements thread 9a41c0de27b3f6150d8e2c7a64b19f3e --json"),
    "elements check": ("elements check", "elements check --json"),
    "quarantine": ("quarantine list", "quarantine retry --all"),
    "quarantine list": ("quarantine list", "quarantine list --mailbox me@example.org --json"),
    "quarantine show": ("quarantine show 0123456789abcdef", "quarantine show 0123456789abcdef --raw > message.eml"),
    "quarantine retry": ("quarantine retry 0123456789abcdef", "quarantine retry --all"),
    "quarantine drop": ("quarantine drop 0123456789abcdef",),
    "consent": ("consent show me@example.org", "consent revoke me@example.org"),
    "consent show": ("consent show me@example.org", "consent show me@example.org --json"),
    "consent grant": (
        "consent grant me@example.org",
        "consent grant me@example.org --scopes metadata,content --expires 2027-01-01 --granted-by 'Alice Example'",
    ),
    "consent revoke": ("consent revoke me@example.org",),
    "audit": ("audit verify", "audit tail -n 5"),
    "audit verify": ("audit verify",),
    "audit tail": ("audit tail", "audit tail -n 100 --json"),
    "run": ("run", "run --config /etc/futurnal-actors/config.toml", "--log-format json run"),
    "ctl": (
        "ctl status",
        "ctl status --json",
        "ctl sync alice INBOX",
        "ctl pause alice",
        "ctl quarantine list",
        "ctl consent revoke alice",
        "ctl subscribe --json",
        "ctl changes 1200",
        "ctl help sync",
        "ctl sync --help",
    ),
    "console": ("console",),
    "top": ("top", "top --interval 5", "top --once"),
    "demo": ("demo", "demo --messages 1000", "--data-dir /tmp/futurnal-demo demo --keep-server"),
    "completion": (
        "completion bash > ~/.local/share/bash-completion/completions/futurnal-actors",
        "completion zsh > ~/.zfunc/_futurnal-actors",
        "completion fish > ~/.config/fish/completions/futurnal-actors.fish",
    ),
}
