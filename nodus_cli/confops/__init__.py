"""Configuration files: semantic diff, in-place edits, atomic apply with health check, history.

Modules import their heavy dependencies (tomlkit, the store) inside functions so that
``nodus config diff`` starts fast and never loads duckdb.
"""
