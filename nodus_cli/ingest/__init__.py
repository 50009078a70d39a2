"""Ingest logs and metrics into the store: format sniffing, DuckDB-side parsing,
windowed exactly-once commits, quarantine and keyed redaction.

The API is ``engine.ingest`` (with ``engine.IngestOptions``) and, for what was
ingested, ``catalog.list_sources`` and ``catalog.list_quarantine``. The modules:
``source`` finds, opens and cuts files into windows of whole records; ``lines``
turns a window into the Arrow stream of numbered lines DuckDB scans; ``sniff``
recognises the format of a sample; ``formats`` holds the SQL that parses each
format; ``redact`` computes keyed
pseudonyms; ``schema`` declares the package's store migrations. This package module
imports nothing, so importing ``schema`` (``nodus_cli.schemas.install``) stays light.
"""
