"""SQL tools: dialect handling, transpiling, verified rewrites, lint and the query log.

sqlglot and duckdb are imported inside functions: importing this package is cheap.
"""

from __future__ import annotations

from nodus_cli.sqltools.errors import UnsupportedConstruct

__all__ = ["UnsupportedConstruct"]
