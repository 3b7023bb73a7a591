"""Sync planning and sequencing: which folders, in which windows and batches, the folder sync that
owns the watermark, sync runs, freshness, and retrying quarantined messages."""
