from __future__ import annotations

import io
import json
import logging
import re
import stat
from pathlib import Path

from loguru import logger

from futurnal.cli.output import error_line
from futurnal.logs.configure import Redactor, configure_logging, redactor


def test_registered_secrets_never_reach_a_log_line() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    redactor.add_secret("correct horse battery")
    logger.error("login failed with correct horse battery for user")
    try:
        raise RuntimeError("server echoed correct horse battery")
    except RuntimeError:
        logger.exception("oops")
    assert "correct horse battery" not in stream.getvalue()
    assert "[secret]" in stream.getvalue()


def test_server_text_in_a_text_log_line_neither_drives_the_terminal_nor_forges_a_line() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        logger.bind(mailbox="m\x1b[2J").info("folder synced: Inbox\x1b]0;pwned\x07\n2026-01-01 00:00:00 ERROR forged")
    finally:
        configure_logging("WARNING")
    (line,) = stream.getvalue().splitlines()
    assert "\x1b" not in line and "\x07" not in line
    assert line.endswith("Inbox\\x1b]0;pwned\\x07\\x0a2026-01-01 00:00:00 ERROR forged [m\\x1b[2J]")


def test_credential_shaped_values_and_protocol_logins_are_redacted() -> None:
    r = Redactor()
    text = r.redact('password=hunter2 token: abc.def > b\'A001 LOGIN alice "pw"\' Authorization: Bearer ya29.x')
    for secret in ("hunter2", "abc.def", '"pw"', "ya29.x"):
        assert secret not in text


def test_email_addresses_become_tokens_by_default_and_are_kept_on_request() -> None:
    r = Redactor()
    masked = r.redact("sync of alice.smith@example.org done")
    assert re.fullmatch(r"sync of <addr:[0-9a-f]{8}> done", masked)
    assert r.redact("from Alice.Smith@Example.org") == f"from {masked.split()[2]}"  # case does not matter
    r.redact_personal = False
    assert r.redact("sync of alice.smith@example.org done") == "sync of alice.smith@example.org done"


def test_the_same_address_gets_the_same_token_in_every_run_on_one_data_dir(tmp_path: Path) -> None:
    first, second, elsewhere = Redactor(), Redactor(), Redactor()
    first.use_key_file(tmp_path / "data" / "log.key")
    second.use_key_file(tmp_path / "data" / "log.key")
    elsewhere.use_key_file(tmp_path / "other" / "log.key")
    token = first.token("addr", "bob@example.org")
    assert second.token("addr", "bob@example.org") == token
    assert elsewhere.token("addr", "bob@example.org") != token
    assert first.token("addr", "carol@example.org") != token
    assert stat.S_IMODE((tmp_path / "data" / "log.key").stat().st_mode) == 0o600


def test_paths_under_home_are_masked_in_logs_but_not_in_messages_to_the_user() -> None:
    r = Redactor(home="/home/ann")
    line = r.redact("cannot write /home/ann/mail/report.pdf: disk full; /etc/hosts is fine")
    assert "/home/ann" not in line and "report.pdf" not in line and "/etc/hosts is fine" in line
    assert r.redact("see /home/ann/.config/x.toml", paths=False) == "see /home/ann/.config/x.toml"
    assert r.redact("/home/annex/file") == "/home/annex/file"  # another user's home is not ann's


def test_an_error_line_shows_the_users_own_address_and_the_services_stays_redacted() -> None:
    redactor.add_secret("s3cret-pw")
    message = "bob@example.org is already registered as bob (login with s3cret-pw, password=hunter2 sent)"
    assert error_line(message) == ("futurnal-actors: error: bob@example.org is already registered as bob "
                                   "(login with [secret], password=[secret] sent)")
    assert re.fullmatch(r"futurnal-actors: error: <addr:[0-9a-f]{8}> is already registered as bob "
                        r"\(login with \[secret\], password=\[secret\] sent\)", error_line(message, service=True))


def test_a_mailbox_id_made_from_its_address_is_masked_in_logs_and_a_chosen_one_is_not() -> None:
    r = Redactor(home="/nonexistent")
    r.add_mailbox("alice.smith-example.com", "Alice.Smith@Example.com")  # the default id
    r.add_mailbox("work", "bob@example.org")  # chosen with --id
    line = r.redact("sync of alice.smith-example.com failed; work is fine; alice.smith-example.com2 is another")
    assert re.fullmatch(r"sync of <mailbox:[0-9a-f]{8}> failed; work is fine; alice\.smith-example\.com2 is another",
                        line), line
    assert re.fullmatch(r"gave up on <mailbox:[0-9a-f]{8}>\. /srv/state/<mailbox:[0-9a-f]{8}>\.json",
                        r.redact("gave up on alice.smith-example.com. /srv/state/alice.smith-example.com.json"))
    assert r.redact("no mailbox alice.smith-example.com", paths=False) == "no mailbox alice.smith-example.com"
    r.redact_personal = False
    assert "alice.smith-example.com" in r.redact("sync of alice.smith-example.com")


def test_subjects_and_file_names_passed_as_fields_are_masked_wherever_they_appear() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, log_format="json")
    try:
        logger.debug("parsed {subject} with {filename}", subject="Quarterly figures", filename="q3 budget.xlsx")
        logger.bind(subject="Quarterly figures").info("stored")
    finally:
        configure_logging("WARNING")
    out = stream.getvalue()
    assert "Quarterly" not in out and "budget" not in out
    first = json.loads(out.splitlines()[0])
    assert first["message"] == (f"parsed {redactor.token('subject', 'Quarterly figures')} "
                                f"with {redactor.token('file', 'q3 budget.xlsx')}")


def test_stdlib_logging_from_libraries_goes_through_the_same_filter() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    logging.getLogger("pykka").warning("actor of bob@example.net failed")
    assert "bob@example.net" not in stream.getvalue()
    assert "<addr:" in stream.getvalue()


def test_lists_of_file_names_and_addresses_are_masked_item_by_item() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        logger.debug("attachments {filenames} from {addresses}", filenames=["plan.pdf", "x.txt"],
                     addresses=["Bob <b@example.org>"])
    finally:
        configure_logging("WARNING")
    out = stream.getvalue()
    assert "plan.pdf" not in out and "x.txt" not in out and "Bob" not in out
    assert redactor.token("file", "plan.pdf") in out


def test_a_short_subject_is_masked_as_a_word_and_tokens_are_not_masked_again() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        logger.debug("High hopes: {subject} / {filename}", subject="Hi", filename="subject")
    finally:
        configure_logging("WARNING")
    out = stream.getvalue()
    assert "High hopes: " in out
    assert f"{redactor.token('subject', 'Hi')} / {redactor.token('file', 'subject')}" in out
