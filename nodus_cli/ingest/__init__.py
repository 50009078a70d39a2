"""Ingest logs and metrics into the store: format sniffing, DuckDB-side parsing,
windowed exactly-once commits, quarantine and keyed redaction.

The API lives in ``nodus_cli.ingest.engine`` (``ingest``) and
``nodus_cli.ingest.catalog`` (``list_sources``, ``list_quarantine``); this package
module stays import-light because the store's migrations import ``schema``.
"""
