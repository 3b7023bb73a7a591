"""What the quarantine may keep of a message depends on the mailbox's consent."""

from __future__ import annotations

from futurnal.sync.folder_sync import header_block


def test_only_the_header_section_is_kept_without_content_consent() -> None:
    raw = b"Subject: hi\r\nFrom: a@example.org\r\n\r\nthe body, which is content\r\n"
    assert header_block(raw) == b"Subject: hi\r\nFrom: a@example.org\r\n\r\n"
    assert header_block(b"Subject: bare\n\nbody\n") == b"Subject: bare\n\n"
    assert header_block(b"Subject: no body at all\r\n") == b"Subject: no body at all\r\n"
