"""Sync planning and sequencing: which folders, in which windows and batches; the folder sync that
sequences a message's path (fetch, parse, build, hand to the sink) and owns the watermark; the
build step; the IMAP port the sync core needs; sync runs, freshness, and retrying quarantined
messages."""
