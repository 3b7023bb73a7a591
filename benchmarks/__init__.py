"""Throughput and resource benchmarks of the IMAP ingestion, run by ``bin/benchmark``.

Not part of the test suite: these measure, they do not assert. See ``benchmarks/run.py``.
"""
