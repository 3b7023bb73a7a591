"""From a message's bytes to its parsed form: headers, the MIME walk, body text, HTML to text, and
the pool of worker processes every message is parsed in. Imports neither IMAP nor storage."""
