"""Scale out: hive-partitioned Parquet export and query engines over the export.

``export`` writes store tables as Parquet with DuckDB's own writer, incrementally and
crash-safely; ``dataset`` reads an export directory back (its tables and manifests);
``engines`` runs nodus's DuckDB-dialect SQL over an export with DuckDB or Apache Spark.
Heavy modules (duckdb, pyspark, sqlglot) are imported inside functions.
"""

from __future__ import annotations

import enum


class QueryEngine(enum.StrEnum):
    """Which engine runs ``nodus query``."""

    duckdb = "duckdb"
    spark = "spark"
